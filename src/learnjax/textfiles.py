"""Reading the user's own plain text: files or folders, streamed line by line."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".text", ".md")


def text_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The files named, and the text files (.txt, .text, .md) inside named folders, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not inside:
                raise ValueError(f"folder {str(path)!r} holds no text files ({', '.join(TEXT_SUFFIXES)})")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"corpus path {str(path)!r} does not exist")
    return found


def iter_lines(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Yields the non-blank lines of every file, one at a time (a large file is
    never read whole). A file that is not UTF-8 raises a ValueError naming it."""
    for path in text_files(paths):
        with open(path, encoding="utf-8") as f:
            number = 0
            try:
                for number, line in enumerate(f, 1):
                    line = line.strip()
                    if line:
                        yield line
            except UnicodeDecodeError as e:
                raise ValueError(f"{str(path)!r} is not UTF-8 text (near line {number + 1}): {e.reason}") from None
