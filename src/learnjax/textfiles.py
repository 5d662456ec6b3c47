"""Reading the user's own plain text: files or folders, streamed line by line."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO
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


# One text per line: a "line" longer than this is a file without line breaks
# (minified, binary or a whole book on one line), not a text. Lines are read
# at most this long, so such a file is never read into memory whole.
MAX_LINE_BYTES = 1_000_000


def checked_lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    """(number, line) of each line of a binary stream, ended by "\n" only and
    decoded as UTF-8 (a byte order mark first dropped), refused with a
    ValueError naming `name` and the line if it is not UTF-8, holds NUL
    characters (a binary file) or is longer than `MAX_LINE_BYTES`."""
    for number, raw in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise ValueError(f"{name} line {number} is longer than {MAX_LINE_BYTES:,} bytes: "
                             "one text per line is expected (is it a binary file, or text without line breaks?)")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name} line {number} is not UTF-8 text (byte {e.start + 1} of the line: {e.reason}); save it as UTF-8") from None
        if "\0" in line:
            raise ValueError(f"{name} line {number} holds NUL characters: a binary file, not text")
        yield number, line.removeprefix(BOM) if number == 1 else line


def iter_lines(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Yields the non-blank lines of every file, one at a time (a large file is
    never read whole). A byte order mark is dropped (at the start of a file, or
    of a line where files were joined together). A file that is not UTF-8, or
    not text (`checked_lines`), raises a ValueError naming it and the line."""
    for path in text_files(paths):
        with open(path, "rb") as f:
            for _, line in checked_lines(f, repr(str(path))):
                line = line.lstrip(BOM).strip()
                if line:
                    yield line


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
