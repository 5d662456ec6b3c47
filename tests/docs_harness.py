"""Runs the Python on the documentation pages as the reader sees it.

Two things stand between a page's source and what a reader sees: snippet
includes (`--8<--`), which sybil does not expand, and fences with attributes
(```` ```python exec="on" ````, ```` ```py title="x" ````), which sybil's stock
parser skips. `SnippetDocument` expands includes with pymdownx's own
preprocessor, configured from mkdocs.yml; `PythonFenceParser` collects every
Python fence, attributes or not.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import markdown
from mkdocs.config import load_config
from sybil import Document, Region
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
PYTHON_LANGUAGES = ("python", "py", "python3")
# Any fence whose info string names Python in any spelling: what must be run.
ANY_PYTHON_FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[ \t]*\{?\.?(?:python3?|py|pycon|ipython)\b", re.MULTILINE | re.IGNORECASE)


@functools.cache
def snippet_config(mkdocs_yml: Path = ROOT / "mkdocs.yml") -> dict:
    """The pymdownx.snippets options exactly as `mkdocs_yml` sets them."""
    config = load_config(str(mkdocs_yml))
    return dict(config["mdx_configs"]["pymdownx.snippets"])


def expand_snippets(text: str, mkdocs_yml: Path = ROOT / "mkdocs.yml") -> str:
    """`text` with every `--8<--` include replaced by what it includes."""
    md = markdown.Markdown(extensions=["pymdownx.snippets"], extension_configs={"pymdownx.snippets": snippet_config(mkdocs_yml)})
    return "\n".join(md.preprocessors["snippet"].run(text.split("\n")))


class SnippetDocument(Document):
    """A Markdown page with its `--8<--` includes expanded before parsing."""

    mkdocs_yml: Path = ROOT / "mkdocs.yml"

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
    whatever attributes follow (title, exec, hl_lines, ...)."""

    def __init__(self) -> None:
        languages = "|".join(PYTHON_LANGUAGES)
        self.lexer = RawFencedCodeBlockLexer(
            info_pattern=re.compile(rf"[ \t]*\{{?\.?(?:{languages})(?:[ \t]+[^\n]*)?$\n", re.MULTILINE | re.IGNORECASE),
            mapping={"source": "source"},
        )
        self.evaluator = PythonEvaluator()

    def __call__(self, document: Document):
        for region in self.lexer(document):
            yield Region(region.start, region.end, region.lexemes["source"], self.evaluator)


def python_fence_count(text: str) -> int:
    return len(ANY_PYTHON_FENCE.findall(text))
