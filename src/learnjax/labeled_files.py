"""Reading the user's labeled examples: CSV, TSV or JSON Lines with text and label columns."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_labeled(path: str | os.PathLike, text_column: str = "text", label_column: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels from a .csv, .tsv or .jsonl file.

    Every problem raises a ValueError that names the file, and the line where
    there is one: a missing column, an empty text or label, a file that is not
    UTF-8, a blank line inside a CSV/TSV table, or fewer than two classes.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{str(path)!r}: unknown format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"labeled file {str(path)!r} does not exist")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{str(path)!r} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    rows = _jsonl_rows(path, raw) if kind == "jsonl" else _table_rows(path, raw, "\t" if kind == "tsv" else ",")
    texts, labels = [], []
    for line, row in rows:
        for column in (text_column, label_column):
            if column not in row:
                raise ValueError(f"{str(path)!r} line {line}: no {column!r} column (found {sorted(row)})")
        text, label = str(row[text_column] or "").strip(), str(row[label_column] if row[label_column] is not None else "").strip()
        if not text:
            raise ValueError(f"{str(path)!r} line {line}: the {text_column!r} is empty")
        if not label:
            raise ValueError(f"{str(path)!r} line {line}: the {label_column!r} is empty")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise ValueError(f"{str(path)!r} holds no labeled examples")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"{str(path)!r}: every example has the label {classes[0]!r}; a classifier needs at least two classes")
    return texts, labels


def _table_rows(path: Path, raw: str, delimiter: str):
    lines = raw.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # blank lines at the end are harmless
    if not lines or not lines[0].strip():
        raise ValueError(f"{str(path)!r} has no header line (expected column names such as 'text' and 'label')")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(f"{str(path)!r} line {number}: blank line inside the table")
    reader = csv.DictReader(lines, delimiter=delimiter)
    for row in reader:
        if None in row:  # more fields than the header names
            raise ValueError(f"{str(path)!r} line {reader.line_num}: more fields than the header has columns")
        yield reader.line_num, row


def _jsonl_rows(path: Path, raw: str):
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines between JSON records are harmless
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(path)!r} line {number}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{str(path)!r} line {number}: expected a JSON object, got {type(row).__name__}")
        yield number, row
