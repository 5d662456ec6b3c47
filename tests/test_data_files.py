"""The user's files arrive unchanged: labeled CSV/TSV/JSON Lines come back as
written, text files lose only their byte order marks and hidden folders, and
packing a corpus into token rows streams it without changing a single id."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from learnjax import PretrainRecipe, pretrain
from learnjax.cli import main
from learnjax.data import corpus
from learnjax.data.labeled_files import read_labeled
from learnjax.data.textfiles import iter_lines, text_files
from learnjax.text.tokenizer import CLS_ID, Tokenizer

# Texts that a line-by-line reader changes: a quoted delimiter, line breaks of
# every kind (a blank line too), Unicode line separators, quotes, a tab.
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


def test_byte_order_marks_never_reach_the_vocabulary(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeffhello world\n".encode())
    (tmp_path / "b.txt").write_bytes("\ufeffsecond file\n\ufeffjoined after it\n".encode())  # as `cat` joins files
    lines = list(iter_lines([tmp_path]))
    assert lines == ["hello world", "second file", "joined after it"]
    assert "\ufeff" not in Tokenizer.from_texts(lines).vocab


def test_hidden_folders_and_files_inside_a_folder_are_skipped(tmp_path):
    for name in ("notes.txt", "sub/more.md", ".venv/lib/site.txt", ".hidden.txt", "sub/.cache/x.txt", "image.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("words\n", encoding="utf-8")
    assert text_files([tmp_path]) == [tmp_path / "notes.txt", tmp_path / "sub" / "more.md"]
    assert text_files([tmp_path / ".hidden.txt"]) == [tmp_path / ".hidden.txt"]  # named: read
    assert text_files([tmp_path / ".venv"]) == [tmp_path / ".venv" / "lib" / "site.txt"]  # a hidden folder named: read


def _packed_as_lists(tokenizer: Tokenizer, texts, max_len: int):
    """The packing as first written, with Python lists: the reference the streamed version must equal.
    A text longer than a row is read as consecutive windows: whole rows of its
    first tokens, then the rest packed as a short text."""
    rows, segs, row, seg = [], [], [], []
    for text in texts:
        ids = [CLS_ID, *tokenizer.encode(text)]
        while len(ids) > max_len:
            if row:
                rows.append(row)
                segs.append(seg)
                row, seg = [], []
            rows.append(ids[:max_len])
            segs.append([1] * max_len)
            ids = ids[max_len:]
        if len(row) + len(ids) > max_len:
            rows.append(row)
            segs.append(seg)
            row, seg = [], []
        seg += [(seg[-1] + 1) if seg else 1] * len(ids)
        row += ids
    if row:
        rows.append(row)
        segs.append(seg)
    tokens = np.zeros((len(rows), max_len), dtype=np.int32)
    segments = np.zeros((len(rows), max_len), dtype=np.int32)
    for i, (r, g) in enumerate(zip(rows, segs)):
        tokens[i, : len(r)] = r
        segments[i, : len(g)] = g
    return tokens, segments


EDGE_CASES = [
    ["one two three four five six seven eight nine ten eleven twelve"],  # longer than a row
    ["", "one", "", ""],  # empty texts still take their [CLS]
    ["one two three", "four five six", "seven", "eight nine ten eleven"],  # rows filled exactly (max_len 4)
    ["one [MASK] two [UNK] three", "unseen words here"],
    [],
]


@pytest.mark.parametrize("max_len", [1, 4, 32])
@pytest.mark.parametrize("texts", [corpus.build_corpus(3000), *EDGE_CASES], ids=["corpus", "long", "empty", "full", "specials", "none"])
def test_packing_is_unchanged(texts, max_len):
    tokenizer = Tokenizer.from_texts([*texts, "one two three four"])
    expected = _packed_as_lists(tokenizer, texts, max_len)
    for got in (tokenizer.encode_packed(texts, max_len), tokenizer.encode_packed(iter(texts), max_len)):
        assert [a.dtype for a in got] == [np.int32, np.int32]
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize("max_len", [4, 32])
@pytest.mark.parametrize("texts", [corpus.build_corpus(3000), *EDGE_CASES[:4]], ids=["corpus", "long", "empty", "full", "specials"])
def test_vocabulary_built_while_packing_equals_building_it_first(texts, max_len):
    built_first = Tokenizer.from_texts(texts)
    tokenizer, *got = Tokenizer.from_texts_packed(iter(texts), max_len)
    assert tokenizer == built_first
    assert all(np.array_equal(a, b) for a, b in zip(got, _packed_as_lists(built_first, texts, max_len)))


def test_pretrain_reads_a_stream_once():
    texts = corpus.build_corpus(300)
    foundation = pretrain(PretrainRecipe(steps=1, batch_size=8, d_model=16, n_layers=1, d_ff=16), (t for t in texts))
    assert foundation.tokenizer == Tokenizer.from_texts(texts)


def _corpus_folder(root: Path) -> Path:
    (root / "corpus" / ".venv").mkdir(parents=True)
    (root / "corpus" / "a.txt").write_bytes("\ufeffthe cat sat on the mat.\n\nthe dog sat on the rug.\n".encode() * 20)
    (root / "corpus" / "b.md").write_text("a bird sang in the tree.\n" * 20, encoding="utf-8")
    (root / "corpus" / ".venv" / "pip.txt").write_text("installed packages\n", encoding="utf-8")
    return root / "corpus"


def test_cli_pretrain_reports_files_and_texts_read(tmp_path, capsys):
    folder = _corpus_folder(tmp_path)
    args = ["pretrain", "--corpus", str(folder), "--tokenizer", "word", "--steps", "1", "--batch-size", "8"]
    assert main([*args, "--json", "--out", str(tmp_path / "json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["files"], report["texts"]) == (2, 60)
    assert report["vocabulary"] == 7 + len({"the", "cat", "sat", "on", "mat", ".", "dog", "rug", "a", "bird", "sang", "in", "tree"})
    assert main([*args, "--out", str(tmp_path / "human")]) == 0
    assert "read 60 texts from 2 files" in capsys.readouterr().err
