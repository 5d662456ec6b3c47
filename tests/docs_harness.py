"""Runs the Python on the documentation pages as the reader sees it.

Two things stand between a page's source and what a reader sees: snippet
includes (`--8<--`), which sybil does not expand, and fences with attributes
(```` ```python exec="on" ````, ```` ```py title="x" ````), which sybil's stock
parser skips. `SnippetDocument` expands includes with pymdownx's own
preprocessor, configured from mkdocs.yml; `PythonFenceParser` collects every
Python fence, attributes or not. A page's hidden blocks (run at build time to
draw its figures, never shown) run beside its shown ones rather than among
them, so the shown code must work on its own, as a reader pastes it.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import markdown
import pytest
from mkdocs.config import load_config
from sybil import Document, Example, Region
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

# --8<-- [start:settings]
# The project's settings: a copy of this file in another project edits these lines only.
ROOT = Path(__file__).resolve().parents[1]  # the repository: this file sits in tests/
MKDOCS_YML = ROOT / "mkdocs.yml"  # its pymdownx.snippets options expand the includes
# In CI (this variable set to 1) a skip among these tests fails: a page renamed or
# a browser missing must not pass as "skipped". Paths relative to the root.
CI_VARIABLE = "LEARNJAX_CI"
NO_SKIPS_IN_CI = ("docs/", "src/", "tests/test_browser.py", "tests/test_site.py",
                  "tests/test_docs_harness.py", "tests/test_pasted_blocks.py",
                  "tests/test_walkthroughs.py", "tests/test_snippets.py",
                  "tests/test_api_reference.py")
# --8<-- [end:settings]

PYTHON_LANGUAGES = ("python", "py", "python3")
# Any fence whose info string names Python in any spelling: what must be run.
ANY_PYTHON_FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[ \t]*\{?\.?(?:python3?|py|pycon|ipython)\b", re.MULTILINE | re.IGNORECASE)


@functools.cache
def snippet_config(mkdocs_yml: Path = MKDOCS_YML) -> dict:
    """The pymdownx.snippets options exactly as `mkdocs_yml` sets them."""
    config = load_config(str(mkdocs_yml))
    return dict(config["mdx_configs"]["pymdownx.snippets"])


def expand_snippets(text: str, mkdocs_yml: Path = MKDOCS_YML) -> str:
    """`text` with every `--8<--` include replaced by what it includes."""
    md = markdown.Markdown(extensions=["pymdownx.snippets"], extension_configs={"pymdownx.snippets": snippet_config(mkdocs_yml)})
    return "\n".join(md.preprocessors["snippet"].run(text.split("\n")))


class SnippetDocument(Document):
    """A Markdown page with its `--8<--` includes expanded before parsing."""

    mkdocs_yml: Path = MKDOCS_YML

    @classmethod
    def parse(cls, path: str, *parsers, encoding: str = "utf-8") -> Document:
        text = expand_snippets(Path(path).read_text(encoding=encoding), cls.mkdocs_yml)
        document = cls(text, path)
        for parser in parsers:
            for region in parser(document):
                document.add(region)
        return document


class PythonFenceParser:
    """Collects every fenced block whose language is python, py or python3,
    whatever attributes follow (title, exec, hl_lines, ...).

    The blocks a page shows run in the page's namespace, in order; the blocks
    it hides (markdown-exec's `exec="on"` without `source=`) run beside them,
    so that a shown block which needs a hidden one fails, as it would for a
    reader who pastes the page's code (see `HiddenBlockEvaluator`)."""

    def __init__(self) -> None:
        languages = "|".join(PYTHON_LANGUAGES)
        self.lexer = RawFencedCodeBlockLexer(
            info_pattern=re.compile(rf"[ \t]*\{{?\.?(?:{languages})(?P<attributes>[ \t]+[^\n]*)?$\n", re.MULTILINE | re.IGNORECASE),
            mapping={"source": "source", "attributes": "attributes"},
        )
        self.evaluator = PythonEvaluator()
        self.hidden_evaluator = HiddenBlockEvaluator()

    def __call__(self, document: Document):
        for region in self.lexer(document):
            shown = _block(document, region).is_visible
            yield Region(region.start, region.end, region.lexemes["source"], self.evaluator if shown else self.hidden_evaluator)

    def blocks(self, document: Document) -> list[PythonBlock]:
        """The Python fences of `document`, with their attributes, in page order."""
        return [_block(document, region) for region in self.lexer(document)]


def _block(document: Document, region: Region) -> PythonBlock:
    return PythonBlock(str(region.lexemes["source"]), fence_attributes(region.lexemes["attributes"] or ""),
                       document.text.count("\n", 0, region.start) + 1)


class HiddenBlockEvaluator:
    """Runs a block the page does not show in a namespace of its own. It sees
    every name the shown blocks have made (their latest values), but the shown
    blocks never see its names: the page's code works as shown, without the
    plumbing that draws its figures and tables."""

    def __init__(self) -> None:
        self.python = PythonEvaluator()

    def __call__(self, example: Example) -> None:
        __tracebackhide__ = True
        hidden, synced = example.document.__dict__.setdefault("hidden_namespaces", ({}, {}))
        for name, value in example.namespace.items():
            if name not in synced or synced[name] is not value:  # new or changed by a shown block since
                hidden[name] = value
        synced.clear()
        synced.update(example.namespace)
        self.python(SimpleNamespace(parsed=example.parsed, line=example.line, path=example.path, namespace=hidden))


ATTRIBUTE = re.compile(r"""([\w-]+)=(?:"([^"]*)"|'([^']*)'|(\S+))""")
# markdown-exec's spellings of "no" for a boolean option such as exec="...".
FALSE_WORDS = {"", "no", "off", "false", "0"}


def fence_attributes(text: str) -> dict[str, str]:
    """`key="value"` pairs of a fence's info string: `exec="on" source="above"` -> {"exec": "on", "source": "above"}."""
    return {m.group(1): next(v for v in m.groups()[1:] if v is not None) for m in ATTRIBUTE.finditer(text)}


@dataclass(frozen=True)
class PythonBlock:
    """One Python fence of a page: its source, the attributes of its opening
    line, and the line it starts on (in the page with its includes expanded)."""

    source: str
    attributes: dict[str, str]
    line: int

    @property
    def runs_at_build(self) -> bool:
        return self.attributes.get("exec", "no").lower() not in FALSE_WORDS

    @property
    def is_visible(self) -> bool:
        """Shown to the reader as code: a plain fence, or an executed one that shows its
        source (markdown-exec's `source="above"`, `"below"`, `"tabbed-left"`, ...)."""
        return not self.runs_at_build or bool(self.attributes.get("source"))

    @property
    def shown_source(self) -> str:
        """The code as the page shows it: markdown-exec leaves out lines marked `markdown-exec: hide`."""
        return "\n".join(line for line in self.source.split("\n") if "markdown-exec: hide" not in line)


def page_blocks(page: Path) -> list[PythonBlock]:
    """Every Python block of a documentation page, includes expanded, in order."""
    return PythonFenceParser().blocks(SnippetDocument.parse(str(page)))


def python_fence_count(text: str) -> int:
    return len(ANY_PYTHON_FENCE.findall(text))


@pytest.hookimpl(wrapper=True)
def fail_skips_in_ci(item, call):
    """A `pytest_runtest_makereport` hook: in CI, a skipped test of the docs or the site fails."""
    report = yield
    if os.environ.get(CI_VARIABLE) == "1" and report.skipped and not hasattr(report, "wasxfail"):
        path = item.path.relative_to(item.config.rootpath).as_posix()
        if path.startswith(NO_SKIPS_IN_CI):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)  # (file, line, reason)
            reason = reason.removeprefix("Skipped: ")
            report.outcome = "failed"
            report.longrepr = f"{CI_VARIABLE}=1, and in CI a test of the docs or the site may not skip: {reason}"
    return report
