"""Reading the user's own plain text: files or folders, streamed line by line."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".text", ".md")
BOM = "\ufeff"


def text_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The files named, and the text files (.txt, .text, .md) inside named folders, sorted.

    Inside a folder, hidden folders and files (names starting with a dot, such
    as `.git` or `.venv`) are skipped; a hidden file named on its own is read.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(_visible_text_files(path))
            if not inside:
                raise ValueError(f"folder {str(path)!r} holds no text files ({', '.join(TEXT_SUFFIXES)})")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"corpus path {str(path)!r} does not exist")
    return found


def _visible_text_files(folder: Path) -> Iterator[Path]:
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]  # never walked into
        for name in files:
            path = Path(root, name)
            if not name.startswith(".") and path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
                yield path


def iter_lines(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Yields the non-blank lines of every file, one at a time (a large file is
    never read whole). A byte order mark is dropped (at the start of a file, or
    of a line where files were joined together). A file that is not UTF-8 raises
    a ValueError naming it."""
    for path in text_files(paths):
        with open(path, encoding="utf-8-sig") as f:
            number = 0
            try:
                for number, line in enumerate(f, 1):
                    line = line.lstrip(BOM).strip()
                    if line:
                        yield line
            except UnicodeDecodeError as e:
                raise ValueError(f"{str(path)!r} is not UTF-8 text (near line {number + 1}): {e.reason}") from None


class TextLines:
    """The lines `iter_lines` reads from `paths`, as an iterable that reads the
    files again on each pass; `files` are the files found (checked at once) and
    `count` is how many lines the last pass read."""

    def __init__(self, paths: Iterable[str | os.PathLike]):
        self.files = text_files(paths)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        self.count = 0
        for line in iter_lines(self.files):
            self.count += 1
            yield line
