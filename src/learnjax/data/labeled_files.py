"""Reading the user's examples: CSV, TSV or JSON Lines, with text and label columns
(for a classifier) or prompt and response columns (for an assistant), and the
texts of a file to classify (`iter_texts`)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from learnjax.data.textfiles import BOM, TEXT_SUFFIXES, checked_lines

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
INPUT_FORMATS = ("text", "csv", "tsv", "jsonl")  # what `iter_texts` reads: plain text, one text per line, too


def read_labeled(
    path: str | os.PathLike, text_column: str = "text", label_column: str = "label", *, skipped: list[int] | None = None
) -> tuple[list[str], list[str]]:
    """Texts and labels from a .csv, .tsv or .jsonl file.

    CSV is read exactly as Python's `csv` module reads it: a field in double
    quotes may hold commas, quotes (doubled), line breaks and blank lines, and
    comes back as written. TSV is read the same way with tabs, so whatever
    `csv.writer(f, delimiter="\\t")` or a spreadsheet writes comes back as
    written; but a record that is not valid under those quoting rules, such as
    a hand-written `"Free" money` (a quote that opens a field and closes before
    its end), is read with quotes as plain characters, one record per line, so
    that text keeps its quotes.

    JSON Lines holds one object per line; records are separated by "\\n" only,
    so a U+2028 inside a string is part of the text. A label may be a string or
    a number; a number becomes the string a CSV file would hold, the same for
    `1` and `1.0` (`"1"`), `0.5` stays `"0.5"`. Any other label, such as `true`,
    `null`, `NaN` or a list, and a text that is not a string, are refused.

    Texts come back as written; labels without surrounding whitespace. Every
    problem raises a ValueError that names the file, and the line where there
    is one (a record's first line): a missing column, an empty text or label,
    a file that is not UTF-8, more fields than the header has columns, a blank
    line between CSV/TSV records (blank lines at the end are ignored; inside a
    quoted field they are text), or fewer than two classes. A record holding
    what cannot be text (bytes that are not UTF-8, NUL or other control
    characters) is refused too; with `skipped`, a list, it is left out and its
    line added to the list instead (a row left out changes the data: asked for only).
    """
    path = Path(path)
    rows = _rows(path, label_column, skipped)
    texts, labels = [], []
    for line, row in rows:
        for column in (text_column, label_column):
            if column not in row:
                raise ValueError(f"{_name(path)} line {line}: no {column!r} column (found {sorted(row)})")
        text = "" if row[text_column] is None else row[text_column]  # None: a table row too short
        label = (row[label_column] or "").strip()
        if not isinstance(text, str):
            raise ValueError(f"{_name(path)} line {line}: the {text_column!r} must be a string, got {json.dumps(text)[:60]}")
        if not text.strip():
            raise ValueError(f"{_name(path)} line {line}: the {text_column!r} is empty")
        if not label:
            raise ValueError(f"{_name(path)} line {line}: the {label_column!r} is empty")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise ValueError(f"{_name(path)} holds no labeled examples")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"{_name(path)}: every example has the label {classes[0]!r}; a classifier needs at least two classes")
    return texts, labels


def _rows(path: Path, label_column: str | None = None, skipped: list[int] | None = None) -> Iterator[tuple[int, dict]]:
    """(first line, {column: value}) of each record of a .csv, .tsv or .jsonl
    file, checked for its format and encoding; JSON values of `label_column` as
    a CSV would hold them.

    A record holding what cannot be text (bytes that are not UTF-8, NUL or
    other control characters but tab and line breaks) is refused, naming its
    line; or, if `skipped` is a list, left out and its line added to it."""
    rows = _rows_as_written(path, label_column, skipped is not None)
    for line, row in rows:
        column = next((c for c, v in row.items() if isinstance(v, str) and _NOT_TEXT.search(v)), None)
        if column is None:
            yield line, row
        elif skipped is not None:
            skipped.append(line)
        else:
            raise ValueError(
                f"{_name(path)} line {line}: the {column!r} holds what cannot be text (bytes that are not UTF-8, "
                "NUL or other control characters); correct it, or leave such rows out (--skip-bad-rows)"
            )


# Bytes that are not UTF-8 (read as lone surrogates) and control characters but tab and line breaks.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\udc80-\udcff]")


def _rows_as_written(path: Path, label_column: str | None, lenient: bool) -> Iterator[tuple[int, dict]]:
    """`_rows` before its check of each record's text; `lenient`: bytes that are
    not UTF-8 are read as lone surrogates, for that check to find, instead of refused."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{_name(path)}: unknown format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"labeled file {_name(path)} does not exist")
    data = path.read_bytes()
    try:
        raw = data.decode("utf-8-sig", "surrogateescape" if lenient else "strict")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{_name(path)} line {line} is not UTF-8 text (byte {e.start}): save it as UTF-8, or leave such rows out (--skip-bad-rows)"
        ) from None
    if kind == "jsonl":
        # Only "\n" ends a record: str.splitlines would also split at a U+2028 or NEL
        # inside a string, which JSON allows unescaped.
        return _jsonl_rows(path, enumerate(raw.split("\n"), start=1), label_column)
    return _table_rows(path, io.StringIO(raw, newline=""), "\t" if kind == "tsv" else ",")


def example_kind(path: str | os.PathLike) -> str:
    """ "classifier" for a file of texts and labels, "assistant" for one of prompts
    and responses (judged by its first record's columns; its text is checked
    when the file is read)."""
    path = Path(path)
    line, first = next(iter(_rows_as_written(path, None, lenient=True)), (None, None))
    if first is None:
        raise ValueError(f"{_name(path)} holds no examples")
    if {"text", "label"} <= set(first):
        return "classifier"
    if {"prompt", "response"} <= set(first):
        return "assistant"
    raise ValueError(
        f"{_name(path)} line {line}: expected columns 'text' and 'label' (to train a classifier) or "
        f"'prompt' and 'response' (to train an assistant); found {sorted(first)}"
    )


def read_instructions(path: str | os.PathLike, *, skipped: list[int] | None = None) -> tuple[list[str], list[str], list[int]]:
    """Prompts, responses and their lines from a .csv, .tsv or .jsonl file with
    `prompt` and `response` columns, read as `read_labeled` reads its files
    (`skipped` too); an empty prompt or response, or one that is not a string, is refused."""
    rows, lines = read_text_columns(path, ("prompt", "response"), skipped=skipped)
    return [r["prompt"] for r in rows], [r["response"] for r in rows], lines


def read_text_columns(
    path: str | os.PathLike, columns: tuple[str, ...], *, skipped: list[int] | None = None
) -> tuple[list[dict[str, str]], list[int]]:
    """The `columns` of each record of a .csv, .tsv or .jsonl file, and its line,
    read as `read_labeled` reads its files (`skipped` too); a missing column, an
    empty field or one that is not a string is refused, naming its line."""
    path = Path(path)
    records, lines = [], []
    for line, row in _rows(path, skipped=skipped):
        for column in columns:
            if column not in row:
                raise ValueError(f"{_name(path)} line {line}: no {column!r} column (found {sorted(row)})")
            value = row[column]
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{_name(path)} line {line}: the {column!r} must be a string, got {json.dumps(value)[:60]}")
            if not (value or "").strip():
                raise ValueError(f"{_name(path)} line {line}: the {column!r} is empty")
        records.append({column: row[column] for column in columns})
        lines.append(line)
    if not records:
        raise ValueError(f"{_name(path)} holds no examples")
    return records, lines


def _table_rows(path: Path | str, lines: Iterable[str], delimiter: str) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(first line, {column: field}) of each record after the header, read from
    the file's `lines` (as a file opened with newline="" gives them); a missing
    field is None."""
    records = _records(path, lines, delimiter)
    header = next(records, None)
    if header is None or _blank(header[1]):
        raise ValueError(f"{_name(path)} has no header line (expected column names such as 'text' and 'label')")
    columns = header[1]
    blank_line = None  # a blank record is an error only if a record follows it
    for line, fields in records:
        if _blank(fields):
            blank_line = blank_line or line
            continue
        if blank_line is not None:
            raise ValueError(f"{_name(path)} line {blank_line}: blank line inside the table (a text with blank lines must be in double quotes)")
        if len(fields) > len(columns):
            raise ValueError(f"{_name(path)} line {line}: more fields than the header has columns")
        yield line, dict(zip(columns, fields + [None] * (len(columns) - len(fields))))


def _blank(fields: list[str]) -> bool:
    return all(not field.strip() for field in fields)


def _records(path: Path | str, lines: Iterable[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record, as the `csv` module reads the lines of a
    file opened with newline="" (for TSV, see `read_labeled`)."""
    lines = _LineSource(iter(lines))
    tsv = delimiter == "\t"
    reader = csv.reader(lines, delimiter=delimiter, strict=tsv)
    while True:
        first_line = lines.count + 1
        lines.taken.clear()
        try:
            try:
                records = [(first_line, next(reader))]
            except csv.Error:
                if not tsv:
                    raise
                # Not valid with quotes: the record's lines again, quotes as plain characters.
                plain = csv.reader(lines.taken, delimiter=delimiter, quoting=csv.QUOTE_NONE)
                records = list(enumerate(plain, start=first_line))
        except StopIteration:
            return
        except csv.Error as e:  # e.g. a field longer than csv.field_size_limit()
            raise ValueError(f"{_name(path)} line {first_line}: {e}") from None
        yield from records


class _LineSource:
    """The lines of a text stream for a `csv.reader`, counted, with the lines of the
    record being read kept in `taken`."""

    def __init__(self, stream: Iterator[str]):
        self.stream = stream
        self.count = 0
        self.taken: list[str] = []

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> str:
        line = next(self.stream)
        self.count += 1
        self.taken.append(line)
        return line


def _jsonl_rows(path: Path | str, lines: Iterable[tuple[int, str]], label_column: str | None) -> Iterator[tuple[int, dict]]:
    """(line, object) of each JSON Lines record of the numbered `lines`."""
    for number, line in lines:
        if not line.strip(" \t\r"):
            continue  # blank lines between JSON records are harmless
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as e:  # RecursionError: nested too deep; ValueError: e.g. an int of 5,000 digits
            raise ValueError(f"{_name(path)} line {number}: not valid JSON ({getattr(e, 'msg', e)})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{_name(path)} line {number}: expected a JSON object, got {type(row).__name__}")
        if label_column is not None and label_column in row:
            row[label_column] = _label_text(path, number, label_column, row[label_column])
        yield number, row


def _label_text(path: Path, line: int, column: str, label) -> str:
    """A JSON label as the string a CSV file would hold (see `read_labeled`)."""
    if isinstance(label, float) and math.isfinite(label):
        return str(int(label)) if label.is_integer() else str(label)
    if isinstance(label, str) or (isinstance(label, int) and not isinstance(label, bool)):
        return str(label)
    raise ValueError(
        f"{_name(path)} line {line}: the {column!r} is {json.dumps(label)[:60]}; a label must be a string or a number (write it in quotes)"
    )


def _name(path: str | os.PathLike) -> str:
    """A file as messages name it."""
    return "standard input" if str(path) == "-" else repr(str(path))


def input_format(path: str | os.PathLike) -> str:
    """The format `iter_texts` reads `path` as, by its name: "-" (standard input)
    and .txt, .text or .md files are plain text, one text per line."""
    suffix = Path(path).suffix.lower()
    if str(path) == "-" or suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise ValueError(f"{_name(path)}: unknown format {suffix!r}; use one of {', '.join((*TEXT_SUFFIXES, *FORMATS))}, or name the format")


def iter_texts(path: str | os.PathLike, kind: str | None = None, text_column: str = "text") -> Iterator[tuple[int, str]]:
    """(line, text) of each text in a file to classify, read as a stream (a large
    file is never held whole): plain text, one text per line (blank lines
    skipped), or the `text_column` of CSV, TSV or JSON Lines records, read as
    `read_labeled` reads them. `path` "-" is standard input. `kind` ("text",
    "csv", "tsv" or "jsonl") overrides the format `input_format` reads from the name.

    A file that is not UTF-8 text, holds NUL characters or a line longer than
    `learnjax.data.textfiles.MAX_LINE_BYTES`, lacks the text column, or has a text
    that is not a string, raises a ValueError naming the file and the line.
    """
    kind = kind or input_format(path)
    if kind not in INPUT_FORMATS:
        raise ValueError(f"unknown input format {kind!r}; use one of {', '.join(INPUT_FORMATS)}")
    name = _name(path)
    if str(path) != "-" and not Path(path).is_file():
        raise FileNotFoundError(f"input file {_name(path)} does not exist")
    # Read as bytes: only "\n" ends a line (a JSON string may hold a U+2028, a
    # quoted CSV field a "\r"), and each line's number is exact in errors.
    stream = open(sys.stdin.fileno(), "rb", closefd=False) if str(path) == "-" else open(path, "rb")
    with stream:
        lines = checked_lines(stream, name)
        if kind == "text":
            for number, line in lines:
                if text := line.lstrip(BOM).strip():
                    yield number, text
            return
        if kind == "jsonl":
            rows = _jsonl_rows(path, ((number, line.rstrip("\n")) for number, line in lines), None)
        else:
            rows = _table_rows(path, (line for _, line in lines), "\t" if kind == "tsv" else ",")
        for number, row in rows:
            if text_column not in row:
                raise ValueError(f"{name} line {number}: no {text_column!r} field (found {sorted(row)})")
            text = "" if row[text_column] is None else row[text_column]
            if not isinstance(text, str):
                raise ValueError(f"{name} line {number}: the {text_column!r} must be a string, got {json.dumps(text)[:60]}")
            yield number, text
