"""Reading the user's own plain text: files or folders, streamed line by line."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

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

# Control characters but tab and the line's ending: NUL and its kin, found in
# real text scraped or exported from mail, web pages and PDFs.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f]")
# A file is judged by its start: one a tenth of which is not text there is a
# binary file given by mistake (an image, a PDF, UTF-16 text), not a corpus.
HEAD_BYTES = 65536
MOST_NOT_TEXT = 0.1


@dataclass
class NotText:
    """The lines from which reading dropped what cannot be text: how many, and
    where the first few are ((file, line number) pairs)."""

    lines: int = 0
    first: list[tuple[str, int]] = field(default_factory=list)
    SHOWN = 5

    def add(self, name: str, number: int) -> None:
        self.lines += 1
        if len(self.first) < self.SHOWN:
            self.first.append((name, number))

    def __str__(self) -> str:
        where = ", ".join(f"{name!r} line {number}" for name, number in self.first) + (", ..." if self.lines > len(self.first) else "")
        return (
            f"dropped what is not text (NUL and other control characters, bytes that are not UTF-8) from "
            f"{self.lines} line{'s' if self.lines != 1 else ''}: {where}"
        )


def checked_lines(stream: BinaryIO, name: str, dropped: Callable[[int], None] | None = None) -> Iterator[tuple[int, str]]:
    """(number, line) of each line of a binary stream, ended by "\n" only and
    decoded as UTF-8 (a byte order mark first dropped), refused with a
    ValueError naming `name` and the line if it is longer than `MAX_LINE_BYTES`.

    A line that is not UTF-8, or holds NUL characters, is refused the same way;
    unless `dropped` is given: then its bytes that are not UTF-8 and its control
    characters (but tab) are dropped (NUL removed, the others made spaces, since
    they stood between words), and `dropped` is called with the line's number."""
    for number, raw in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise ValueError(
                f"{name} line {number} is longer than {MAX_LINE_BYTES:,} bytes: "
                "one text per line is expected (is it a binary file, or text without line breaks?)"
            )
        changed = False
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if dropped is None:
                raise ValueError(f"{name} line {number} is not UTF-8 text (byte {e.start + 1} of the line: {e.reason}); save it as UTF-8") from None
            line, changed = raw.decode("utf-8", "ignore"), True
        if dropped is None:
            if "\0" in line:
                raise ValueError(f"{name} line {number} holds NUL characters: a binary file, not text")
        else:
            body = line.removesuffix("\n").removesuffix("\r")
            if _CONTROLS.search(body):
                line, changed = _CONTROLS.sub(lambda m: "" if m.group() == "\0" else " ", body) + line[len(body) :], True
            if changed:
                dropped(number)
        yield number, line.removeprefix(BOM) if number == 1 else line


def _mostly_not_text(path: Path) -> float | None:
    """The share of the first `HEAD_BYTES` of `path` that is not text (bytes
    that are not UTF-8, control characters but tab and line endings), if it is
    above `MOST_NOT_TEXT`."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    if not head:
        return None
    text = head.decode("utf-8", "surrogateescape")
    bad = len(_CONTROLS.findall(text.replace("\r\n", "\n"))) + sum("\udc80" <= c <= "\udcff" for c in text)
    return bad / len(head) if bad > MOST_NOT_TEXT * len(head) else None


def iter_lines(paths: Iterable[str | os.PathLike], *, strict: bool = False, not_text: NotText | None = None) -> Iterator[str]:
    """Yields the non-blank lines of every file, one at a time (a large file is
    never read whole). A byte order mark is dropped (at the start of a file, or
    of a line where files were joined together).

    What cannot be text (bytes that are not UTF-8, NUL and other control
    characters) is dropped from the lines that hold it, counted in `not_text`
    if given; with `strict`, such a line is refused instead,
    with a ValueError naming the file and the line. A file whose start is
    mostly not text (a binary file) is always refused, naming its first such line."""
    not_text = NotText() if not_text is None else not_text
    for path in text_files(paths):
        name = repr(str(path))
        if not strict and (share := _mostly_not_text(path)) is not None:
            _refuse_binary(path, name, share)
        with open(path, "rb") as f:
            for _, line in checked_lines(f, name, None if strict else functools.partial(not_text.add, str(path))):
                line = line.lstrip(BOM).strip()
                if line:
                    yield line


def _refuse_binary(path: Path, name: str, share: float) -> None:
    """Raises the error a strict reading gives at the first line that is not
    text, saying how much of the file's start is not text."""
    try:
        with open(path, "rb") as f:
            for _ in checked_lines(f, name):
                pass
    except ValueError as e:
        raise ValueError(f"{e} ({share:.0%} of the file's start is not text: a binary file?)") from None
    raise ValueError(f"{name}: {share:.0%} of the file's start is control characters: a binary file, not text")


class TextLines:
    """The lines `iter_lines` reads from `paths`, as an iterable that reads the
    files again on each pass; `files` are the files found (checked at once),
    `count` is how many lines the last pass read and `not_text` the lines it
    dropped what is not text from (none with `strict`: they are refused)."""

    def __init__(self, paths: Iterable[str | os.PathLike], *, strict: bool = False):
        self.files = text_files(paths)
        self.strict = strict
        self.count = 0
        self.not_text = NotText()

    def __iter__(self) -> Iterator[str]:
        self.count = 0
        self.not_text = NotText()
        for line in iter_lines(self.files, strict=self.strict, not_text=self.not_text):
            self.count += 1
            yield line
