"""The user's files arrive unchanged: labeled CSV/TSV/JSON Lines come back as
written."""

import csv
import json
from pathlib import Path

import pytest

from learnjax.labeled_files import read_labeled

AWKWARD_ROWS = [
    ("Win cash, now", "spam"),
    ("two\nlines", "ham"),
    ("a blank line\n\ninside", "spam"),
    ("windows\r\nbreak and a lone\rreturn", "ham"),
    ("line\u2028separator and next\x85line", "spam"),
    ('"Free" money', "spam"),
    ('she said "hi" and left', "ham"),
    ("a\ttab", "spam"),
    ("plain text", "ham"),
]


def _write_table(path: Path, rows, delimiter: str, lineterminator: str = "\r\n") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator=lineterminator)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ValueError) as raised:
        read_labeled(path)
    return str(raised.value)


@pytest.mark.parametrize("row", AWKWARD_ROWS, ids=[repr(text) for text, _ in AWKWARD_ROWS])
@pytest.mark.parametrize("name, delimiter", [("data.csv", ","), ("data.tsv", "\t")])
def test_table_written_by_csv_writer_comes_back_as_written(tmp_path, name, delimiter, row):
    rows = [("first text", "a"), row, ("last text", "b")]
    path = _write_table(tmp_path / name, rows, delimiter)
    assert read_labeled(path) == ([t for t, _ in rows], [label for _, label in rows])


@pytest.mark.parametrize("name, delimiter", [("data.csv", ","), ("data.tsv", "\t")])
def test_table_with_unix_line_ends_comes_back_as_written(tmp_path, name, delimiter):
    # csv.writer with "\n" line ends does not quote a lone "\r": Python cannot read that back either.
    rows = [(text, label) for text, label in AWKWARD_ROWS if "\r" not in text]  # all in one file
    path = _write_table(tmp_path / name, rows, delimiter, lineterminator="\n")
    assert read_labeled(path) == ([t for t, _ in rows], [label for _, label in rows])


def test_hand_written_tsv_keeps_its_quotes(tmp_path):
    path = tmp_path / "hand.tsv"
    path.write_text(
        'text\tlabel\n"Free" money\tspam\nsay "hi"\tham\n"quoted whole"\tham\n"never closed\tspam\nlast\tham\n',
        encoding="utf-8",
    )
    texts, labels = read_labeled(path)
    assert texts == ['"Free" money', 'say "hi"', "quoted whole", '"never closed', "last"]
    assert labels == ["spam", "ham", "ham", "spam", "ham"]


def test_errors_name_the_first_line_of_a_multi_line_record(tmp_path):
    header_and_two_lines = 'text,label\n"first\nsecond",spam\n'  # the next record starts on line 4
    (tmp_path / "a.csv").write_text(header_and_two_lines + '"third\n\nfifth",\n', encoding="utf-8")
    assert "line 4: the 'label' is empty" in _error(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(header_and_two_lines + '"x\ny",ham,extra\n', encoding="utf-8")
    assert "line 4: more fields than the header has columns" in _error(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text(header_and_two_lines + '"  \n",ham\n', encoding="utf-8")
    assert "line 4: the 'text' is empty" in _error(tmp_path / "c.csv")


def test_blank_line_between_records_is_an_error_but_trailing_ones_are_not(tmp_path):
    (tmp_path / "gap.csv").write_text('text,label\n"a\n\nb",spam\n\nyo,ham\n', encoding="utf-8")
    assert "line 5: blank line inside the table" in _error(tmp_path / "gap.csv")
    (tmp_path / "tail.csv").write_text("text,label\nhi,spam\nyo,ham\n\n  \n\n", encoding="utf-8")
    assert read_labeled(tmp_path / "tail.csv") == (["hi", "yo"], ["spam", "ham"])


def test_table_checks_still_hold(tmp_path):
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    assert "has no header line" in _error(tmp_path / "empty.csv")
    (tmp_path / "latin1.tsv").write_bytes(b"text\tlabel\nok\tham\ncaf\xe9\tspam\n")
    assert "line 3 is not UTF-8" in _error(tmp_path / "latin1.tsv")
    (tmp_path / "one.csv").write_text("text,label\na,spam\n\"b\nc\",spam\n", encoding="utf-8")
    assert "at least two classes" in _error(tmp_path / "one.csv")
    (tmp_path / "bom.csv").write_bytes("\ufefftext,label\na,spam\nb,ham\n".encode())
    assert read_labeled(tmp_path / "bom.csv") == (["a", "b"], ["spam", "ham"])
    for name in ("huge.csv", "huge.tsv"):  # beyond the csv module's field size limit
        _write_table(tmp_path / name, [("a", "spam"), ("word " * 40_000, "ham")], "\t" if name.endswith("tsv") else ",")
        assert "line 3: field larger than field limit" in _error(tmp_path / name)


def test_json_lines_are_split_at_newlines_only(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"text": "a\u2028b", "label": "x"}, {"text": "c\x85d\u2029e", "label": "y"}]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw, not escaped
    assert read_labeled(path) == (["a\u2028b", "c\x85d\u2029e"], ["x", "y"])


def test_json_number_labels_are_one_class_per_number(tmp_path):
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 1.0}\n{"text": "c", "label": 0}\n'
                    '{"text": "d", "label": 0.5}\n{"text": "e", "label": "1"}\n'
                    '{"text": "f", "label": 100000000000000000000000000000000000000000000000000}\n', encoding="utf-8")
    assert read_labeled(path)[1] == ["1", "1", "0", "0.5", "1", "1" + "0" * 50]


@pytest.mark.parametrize("value", ["true", "false", "null", "NaN", "[1]", '{"a": 1}'])
def test_json_label_that_is_not_a_string_or_number_is_refused(tmp_path, value):
    path = tmp_path / "bad.jsonl"
    path.write_text(f'{{"text": "a", "label": "x"}}\n{{"text": "b", "label": {value}}}\n', encoding="utf-8")
    message = _error(path)
    assert f"line 2: the 'label' is {json.dumps(json.loads(value))}" in message and "\n" not in message
