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

import contextlib
import functools
import importlib
import io
import os
import re
import runpy
import sys
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
# A page block that holds one whole script (`--8<-- "snippets/x.py"` alone) runs
# as `python snippets/x.py` would, and its names then join the page's. This module
# (in the harness's folder) maps a script's file name to a check of what it
# prints; None: no checks.
SCRIPT_CHECKS = "snippet_headlines"
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


# An include of a whole file: the line holds nothing else, and names no section.
WHOLE_FILE_INCLUDE = re.compile(r"""^[ \t]*-{1,}8<-{1,}[ \t]+(["'])([^"':]+\.py)\1[ \t]*$""", re.MULTILINE)


def whole_scripts(text: str, mkdocs_yml: Path = MKDOCS_YML) -> dict[str, Path]:
    """The Python files that `text` includes whole, by their text."""
    bases = snippet_config(mkdocs_yml).get("base_path") or ["."]  # as pymdownx reads the option
    folders = [Path(os.path.abspath(b)) for b in (bases if isinstance(bases, (list, tuple)) else [bases])]
    found = {}
    for match in WHOLE_FILE_INCLUDE.finditer(text):
        for folder in folders:
            script = (folder / match.group(2)).resolve()
            if script.is_file():
                found[script.read_text(encoding="utf-8").rstrip("\n")] = script
                break
    return found


class SnippetDocument(Document):
    """A Markdown page with its `--8<--` includes expanded before parsing."""

    mkdocs_yml: Path = MKDOCS_YML

    @classmethod
    def parse(cls, path: str, *parsers, encoding: str = "utf-8") -> Document:
        source = Path(path).read_text(encoding=encoding)
        document = cls(expand_snippets(source, cls.mkdocs_yml), path)
        document.whole_scripts = whole_scripts(source, cls.mkdocs_yml)
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
        scripts = getattr(document, "whole_scripts", {})
        for region in self.lexer(document):
            if not _block(document, region).is_visible:
                yield Region(region.start, region.end, region.lexemes["source"], self.hidden_evaluator)
            elif script := scripts.get(str(region.lexemes["source"]).rstrip("\n")):
                yield Region(region.start, region.end, region.lexemes["source"], ScriptEvaluator(script))
            else:
                yield Region(region.start, region.end, region.lexemes["source"], self.evaluator)

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


class ScriptEvaluator:
    """Runs a block that is one whole script as `python <script>` would: as
    `__main__`, in a namespace of its own (a name from an earlier block does not
    reach it, so a missing import fails), then gives its names to the page's
    later blocks. What it prints is checked by `SCRIPT_CHECKS`, if it names a check
    for it: the page's run is the script's standalone test."""

    def __init__(self, script: Path) -> None:
        self.script = script

    def __call__(self, example: Example) -> None:
        __tracebackhide__ = True
        printed = io.StringIO()
        with contextlib.redirect_stdout(_Tee(sys.stdout, printed)):
            names = runpy.run_path(str(self.script), run_name="__main__")
        example.namespace.update({name: value for name, value in names.items() if not name.startswith("__")})
        check = script_check(self.script.name)
        if check is not None:
            check(printed.getvalue())


def script_check(name: str):
    """The check `SCRIPT_CHECKS` gives for the script file `name`, or None."""
    return None if SCRIPT_CHECKS is None else importlib.import_module(SCRIPT_CHECKS).CHECKS.get(name)


class _Tee(io.TextIOBase):
    """Writes to two streams: pytest's capture, as before, and a copy to check."""

    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


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
