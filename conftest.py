"""Sybil over every documentation page: each Python block runs, top to bottom,
in one namespace per page, with snippet includes expanded as the site shows them;
and over the library's docstrings, whose examples run as doctests."""

import sys
from pathlib import Path

# --8<-- [start:settings]
# The project's settings: a copy of this file in another project edits these lines only.
DOCS = "docs"  # the pages, as mkdocs.yml's docs_dir
SOURCE = "src"  # the library, whose docstrings' examples run as doctests
HARNESS = "tests"  # the folder holding docs_harness.py
# The site tests share one strict build, so they stay on one worker.
SITE_TESTS = ("tests/test_site.py", "tests/test_browser.py", "tests/test_reading.py")
# Pytest plugins (modules in HARNESS), loaded whatever folders a run collects.
PLUGINS = ["pytester", "compiled_programs", "stored_passes"]
# --8<-- [end:settings]

sys.path.insert(0, str(Path(__file__).parent / HARNESS))

import pytest  # noqa: E402
from sybil import Sybil  # noqa: E402
from sybil.parsers.rest import DocTestParser  # noqa: E402

from docs_harness import PythonFenceParser, SnippetDocument, fail_skips_in_ci  # noqa: E402

pytest_plugins = PLUGINS

# --8<-- [start:sybil]
pages = Sybil(parsers=[PythonFenceParser()], patterns=["*.md"], path=DOCS,
              document_types={".md": SnippetDocument})
docstrings = Sybil(parsers=[DocTestParser()], patterns=["*.py"], path=SOURCE)
pytest_collect_file = (pages + docstrings).pytest()
pytest_runtest_makereport = fail_skips_in_ci  # in CI, a skipped test of the docs fails
# --8<-- [end:sybil]


# Under pytest-xdist (`-n`, set in pyproject.toml) tests run in parallel workers.
# A page's blocks share one namespace, and so do the docstring examples of a
# module, so each page and each module stays on one worker; the site tests
# share one strict build, so they stay together too. A test module whose tests
# share a fixture of its own made once per module (a small model trained, a run
# killed) stays on one worker, so that it is made once. These groups are the
# longest, so they start first.


def _group(item) -> str | None:
    path = Path(item.path).relative_to(Path(__file__).parent).as_posix()
    if path in SITE_TESTS:
        return "site"
    if path.startswith((f"{DOCS}/", f"{SOURCE}/")) or _uses_a_module_fixture_of_its_own(item):
        return path
    return None


def _uses_a_module_fixture_of_its_own(item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info else ()
    module = item.nodeid.split("::")[0]
    return any(d.scope == "module" and d.baseid == module for defs in definitions for d in defs)


@pytest.hookimpl(wrapper=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = _group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: {"site": 0, None: 2}.get(_group(item), 1))
    return (yield)
