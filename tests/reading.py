"""What a reader meets on a documentation page: prose, code blocks, results.

Reads a page's Markdown with its `--8<--` includes expanded, as the site shows
it, and measures it (`measure`). Run it for a table of the Learn pages:

    python tests/reading.py [repository root]
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from docs_harness import expand_snippets, fence_attributes

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 88  # the code column of the site's theme, in characters
MAX_BLOCK_LINES = 30
MAX_CODE_BEFORE_RESULT = 40
FALSE_WORDS = {"", "no", "off", "false", "0"}  # markdown-exec's spellings of "no"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, attributes and lines."""

    language: str
    attributes: dict[str, str]
    lines: list[str]

    @property
    def runs_at_build(self) -> bool:
        return self.attributes.get("exec", "no").lower() not in FALSE_WORDS

    @property
    def is_visible(self) -> bool:
        """Shown as code: a plain fence, or an executed one that shows its source."""
        return not self.runs_at_build or bool(self.attributes.get("source"))

    @property
    def shown_lines(self) -> list[str]:
        """The lines the reader sees (markdown-exec leaves out `markdown-exec: hide` lines),
        without the blank lines that open or close the block."""
        lines = [line for line in self.lines if "markdown-exec: hide" not in line]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        return lines


def blocks_and_prose(text: str) -> tuple[list[Block], list[str]]:
    """The fenced blocks of Markdown `text`, in order, and the lines outside them."""
    blocks, prose = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            prose.append(lines[i])
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        info = opening["info"].strip().lstrip("{").lstrip(".")
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1  # the closing fence
        language = info.split()[0].lower() if info.split() else ""
        blocks.append(Block(language, fence_attributes(info), body))
    return blocks, prose


def page_text(page: Path, root: Path = ROOT) -> str:
    return expand_snippets(page.read_text(encoding="utf-8"), root / "mkdocs.yml")


@dataclass(frozen=True)
class Reading:
    page: str
    prose_words: int
    code_lines: int
    blocks: int
    longest_block: int
    code_before_first_result: int | None  # None: the page computes nothing
    wide_lines: int


WORD = re.compile(r"[A-Za-z0-9][\w'’.,%-]*")
GLOSSARY_ENTRY = re.compile(r"^\*\[[^\]]+\]:")  # `*[term]: definition`, an abbreviation


def prose_words(prose: list[str]) -> int:
    """Words a reader reads outside the code: Markdown syntax, links' targets and HTML left out."""
    words = 0
    for line in prose:
        if GLOSSARY_ENTRY.match(line):
            continue  # the glossary appended to every page: shown as tooltips, not read as prose
        line = re.sub(r"\]\([^)]*\)", "]", line)  # a link's target
        line = re.sub(r"<[^>]+>", " ", line)
        words += len(WORD.findall(line))
    return words


def measure(page: Path, root: Path = ROOT) -> Reading:
    blocks, prose = blocks_and_prose(page_text(page, root))
    shown = [b for b in blocks if b.is_visible]
    before, first_result = 0, None
    for block in blocks:
        if block.is_visible:
            before += len(block.shown_lines)
        if block.runs_at_build:
            first_result = before
            break
    return Reading(
        page=page.relative_to(root / "docs").as_posix(),
        prose_words=prose_words(prose),
        code_lines=sum(len(b.shown_lines) for b in shown),
        blocks=len(shown),
        longest_block=max((len(b.shown_lines) for b in shown), default=0),
        code_before_first_result=first_result,
        wide_lines=sum(len(line) > WIDTH for b in shown for line in b.shown_lines),
    )


def learn_pages(root: Path = ROOT) -> list[Path]:
    """The pages under "Learn" in the navigation of `root`'s mkdocs.yml, in order."""
    from mkdocs.config import load_config

    nav = load_config(str(root / "mkdocs.yml"))["nav"]
    learn = next(entry["Learn"] for entry in nav if "Learn" in entry)

    def files(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from files(value) if isinstance(value, list) else [root / "docs" / value]

    return list(files(learn))


def private_names_of_the_library(src: Path = ROOT / "src" / "learnjax") -> set[str]:
    """Every name starting with one underscore that a learnjax module defines or assigns."""
    import ast

    names = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "name", None) or (node.id if isinstance(node, ast.Name) else None)
            if name and name.startswith("_") and not name.startswith("__") and name != "_":
                names.add(name)
    return names


def names_in(code: str) -> set[str]:
    """The Python names a block's code uses (strings and comments left out)."""
    try:
        return {t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.NAME}
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(re.findall(r"[A-Za-z_]\w*", code))


def table(readings: list[Reading]) -> str:
    header = ("page", "prose words", "code lines", "blocks", "longest block", "code before 1st result", "lines > 88")
    rows = [(r.page, r.prose_words, r.code_lines, r.blocks, r.longest_block,
             "-" if r.code_before_first_result is None else r.code_before_first_result, r.wide_lines) for r in readings]
    return "\n".join("| " + " | ".join(str(cell) for cell in row) + " |" for row in [header, ["---"] * len(header), *rows])


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    print(table([measure(page, root) for page in learn_pages(root)]))
