"""Bad input from one's own files: one line, a non-zero exit, and nothing lost
(a model already in --out, a results file already written)."""

import json

import pytest

from learnjax.cli import main
from learnjax.data.textfiles import MAX_LINE_BYTES
from learnjax.storage.checkpoints import MANIFEST
from learnjax.training.finetuning import FinetuneSettings, finetune
from learnjax.training.foundation import Foundation
from learnjax.training.pretraining import pretrain
from learnjax.training.recipe import PretrainRecipe

CORPUS = ["the cat sat on the mat.", "the dog sat on the rug.", "a bird sang in the tree."] * 20


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model and a classifier saved, and the files the bad commands read."""
    root = tmp_path_factory.mktemp("bad")
    foundation = pretrain(PretrainRecipe(max_len=16, steps=2, batch_size=4, d_model=16, n_layers=1, d_ff=32), CORPUS)
    foundation.save(root / "model")
    finetune(foundation, ["the cat sat.", "a bird sang."] * 4, ["cat", "bird"] * 4, settings=FinetuneSettings(steps=2)).save(root / "classifier")
    (root / "junk.txt").write_bytes(b"the cat sat.\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\xff\xfe\n")
    (root / "nul.txt").write_text("the cat sat.\nabc\x00def\n", encoding="utf-8")
    (root / "latin1.txt").write_bytes(b"the cat sat.\nthe dog sat.\ncaf\xe9 au lait.\n")
    (root / "one-line.txt").write_text("word " * (MAX_LINE_BYTES // 5 + 10), encoding="utf-8")  # megabytes, no newline
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("\n   \n\n", encoding="utf-8")
    (root / "no-text.csv").write_text("body,label\nthe cat sat.,cat\n", encoding="utf-8")
    (root / "texts.txt").write_text("the cat sat.\n", encoding="utf-8")
    # A model directory whose tokenizer is not the kind its manifest records.
    (root / "mismatched").mkdir()
    for file in (root / "model").iterdir():
        (root / "mismatched" / file.name).write_bytes(file.read_bytes())
    manifest = json.loads((root / "model" / MANIFEST).read_text())
    (root / "mismatched" / MANIFEST).write_text(json.dumps({**manifest, "tokenizer_kind": "subword"}))
    return root


CASES = [
    (["pretrain", "--corpus", "{root}/junk.txt"], 1, "{root}/junk.txt' line 2 is not UTF-8 text (byte 1 of the line"),
    (["pretrain", "--strict", "--corpus", "{root}/nul.txt"], 1, "{root}/nul.txt' line 2 holds NUL characters: a binary file, not text"),
    (["pretrain", "--strict", "--corpus", "{root}/latin1.txt"], 1, "{root}/latin1.txt' line 3 is not UTF-8 text (byte 4 of the line"),
    (["pretrain", "--strict"], 2, "--strict checks the text of --corpus"),
    (["pretrain", "--corpus", "{root}/one-line.txt"], 1, "{root}/one-line.txt' line 1 is longer than 1,000,000 bytes"),
    (["pretrain", "--init", "{root}/model", "--corpus", "{root}/empty"], 1, "the corpus is empty"),
    (["pretrain", "--init", "{root}/mismatched", "--corpus", "{root}/texts.txt"], 1, "is a word tokenizer, but the model was saved with a subword tokenizer"),
    (["pretrain", "--max-len", "600"], 1, "--max-len 600 is beyond what a model here takes"),
    (["pretrain", "--init", "{root}/model", "--corpus", "{root}/texts.txt", "--max-len", "64"], 1,
     "--max-len 64 is beyond the position table of the model being continued (16 positions)"),
    (["pretrain", "--lora", "4"], 2, "--lora adapts the model of --init"),
    (["classify", "--model", "{root}/classifier", "--input", "{root}/no-text.csv"], 1, "{root}/no-text.csv' line 2: no 'text' field (found ['body', 'label'])"),
    (["classify", "--model", "{root}/classifier", "--input", "{root}/junk.txt"], 1, "{root}/junk.txt' line 2 is not UTF-8 text (byte 1 of the line"),
    (["classify", "--model", "{root}/classifier", "--input", "{root}/one-line.txt"], 1, "line 1 is longer than 1,000,000 bytes"),
    (["classify", "--model", "{root}/classifier", "--input", "{root}/inbox.pdf"], 1, "unknown format '.pdf'"),
    (["classify", "--model", "{root}/classifier", "the cat", "--input", "{root}/texts.txt"], 2, "give the texts to label, or --input FILE, not both"),
    (["fill-mask", "--model", "{root}/mismatched", "the [MASK] sat."], 1, "is a word tokenizer, but the model was saved with a subword tokenizer"),
]


@pytest.mark.parametrize("args, status, message", CASES, ids=[" ".join(c[0][:1] + [c[2][:30]]) for c in CASES])
def test_bad_input_is_one_line_and_leaves_the_saved_model_as_it_was(saved, tmp_path, capsys, args, status, message):
    out = tmp_path / "out"
    Foundation.load(saved / "model").save(out)  # a model saved earlier in --out
    before = (out / MANIFEST).read_bytes()
    args = [a.format(root=saved) for a in args]
    if args[0] == "pretrain":
        args += ["--steps", "2", "--batch-size", "4", "--overwrite", "--out", str(out)]
    assert main(args) == status
    err = capsys.readouterr().err
    assert message.format(root=saved) in err and err.count("\n") == 1, err
    assert (out / MANIFEST).read_bytes() == before
    Foundation.load(out)


def real_mail(n_lines: int, seed: int = 0) -> list[bytes]:
    """Lines of words like an export of e-mail, one message a line, some of them long."""
    import random

    rng = random.Random(seed)
    words = "the meeting is moved to friday please see the link below thanks for your reply best regards".split()
    return [" ".join(rng.choice(words) for _ in range(rng.choice((20, 60, 350)))).encode() + b"\n" for _ in range(n_lines)]


def test_a_stray_nul_in_a_large_corpus_is_dropped_and_reported_in_one_line(tmp_path, capsys):
    """A real corpus (here 4,899 messages, megabytes) with one NUL byte inside one long line trains, and says so once."""
    lines = real_mail(4899)
    lines[2619] = lines[2619][:700] + b"<a href=\"x\x00y\">" + lines[2619][700:]
    (tmp_path / "mails.txt").write_bytes(b"".join(lines))
    assert len(lines[2619]) > 1000 and (tmp_path / "mails.txt").stat().st_size > 2_000_000
    args = ["pretrain", "--corpus", str(tmp_path / "mails.txt"), "--vocab-size", "100", "--max-len", "16", "--d-model", "8",
            "--layers", "1", "--heads", "1", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "model")]
    assert main(args) == 0
    err = capsys.readouterr().err
    report = [line for line in err.splitlines() if "not text" in line]
    assert report == [f"dropped what is not text (NUL and other control characters, bytes that are not UTF-8) from 1 line: "
                      f"{str(tmp_path / 'mails.txt')!r} line 2620"], err
    Foundation.load(tmp_path / "model")
    assert main([*args[:-2], "--out", str(tmp_path / "strict"), "--strict"]) == 1
    assert "line 2620 holds NUL characters" in capsys.readouterr().err and not (tmp_path / "strict").exists()


def test_the_library_reader_drops_what_is_not_text_and_says_where(tmp_path):
    from learnjax.data.textfiles import TextLines

    (tmp_path / "a.txt").write_bytes(b"one\r\ntw\x00o\r\nthree\x0cfour\n\xffjunk\n\tfive\n" + b"six\n" * 9)
    texts = TextLines([tmp_path])
    assert list(texts)[:5] == ["one", "two", "three four", "junk", "five"]
    assert texts.not_text.lines == 3 and texts.not_text.first == [(str(tmp_path / "a.txt"), n) for n in (2, 3, 4)]
    with pytest.raises(ValueError, match="line 2 holds NUL characters"):
        list(TextLines([tmp_path], strict=True))


def test_a_binary_file_given_as_a_corpus_is_still_refused(tmp_path):
    """Most of its start is not text: a mistake, not a corpus with stray bytes."""
    from learnjax.data.textfiles import iter_lines

    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    (tmp_path / "utf16.txt").write_bytes("the cat sat on the mat.\n".encode("utf-16"))
    for name in ("photo.txt", "utf16.txt"):
        with pytest.raises(ValueError, match=r"line 1 .* of the file's start is not text: a binary file\?\)$"):
            list(iter_lines([tmp_path / name]))


LABELED_WITH_STRAY_BYTES = {
    "bad.csv": b"text,label\nthe cat sat,cat\nthe b\x00ird sang,bird\na bird sang,bird\ncaf\xe9 cat,cat\nthe dog sat,cat\n",
    "bad.jsonl": b'\n{"text": "the cat sat", "label": "cat"}\n{"text": "the b\\u0000ird", "label": "bird"}\n'
                 b'{"text": "a bird sang", "label": "bird"}\n{"text": "caf\xe9 cat", "label": "cat"}\n{"text": "a dog", "label": "cat"}\n',
}


@pytest.mark.parametrize("name", sorted(LABELED_WITH_STRAY_BYTES))
def test_labeled_rows_that_are_not_text_are_refused_or_left_out_when_asked(tmp_path, name):
    from learnjax.data.labeled_files import read_instructions, read_labeled

    path = tmp_path / name
    path.write_bytes(LABELED_WITH_STRAY_BYTES[name])
    with pytest.raises(ValueError, match=f"{name}' line 5 is not UTF-8 text .*--skip-bad-rows"):
        read_labeled(path)
    path.write_bytes(LABELED_WITH_STRAY_BYTES[name].replace(b"\xe9", b"e"))
    with pytest.raises(ValueError, match=f"{name}' line 3: the 'text' holds what cannot be text .*--skip-bad-rows"):
        read_labeled(path)
    path.write_bytes(LABELED_WITH_STRAY_BYTES[name])
    skipped = []
    assert read_labeled(path, skipped=skipped) == (["the cat sat", "a bird sang", "a dog" if name.endswith("l") else "the dog sat"],
                                                   ["cat", "bird", "cat"])
    assert skipped == [3, 5]
    instructions = tmp_path / ("prompts" + path.suffix)
    instructions.write_bytes(LABELED_WITH_STRAY_BYTES[name].replace(b"text", b"prompt").replace(b"label", b"response"))
    with pytest.raises(ValueError, match="line 5 is not UTF-8 text"):
        read_instructions(instructions)
    (tmp_path / ("nul" + path.suffix)).write_bytes(instructions.read_bytes().replace(b"\xe9", b"e"))
    with pytest.raises(ValueError, match="line 3: the 'prompt' holds what cannot be text"):
        read_instructions(tmp_path / ("nul" + path.suffix))
    skipped = []
    assert read_instructions(instructions, skipped=skipped)[2] == [2, 4, 6] and skipped == [3, 5]


def test_finetune_skips_bad_rows_when_asked_and_says_which(tmp_path, capsys):
    from test_model_directories import tiny_foundation

    tiny_foundation().save(tmp_path / "model")
    (tmp_path / "bad.csv").write_bytes(LABELED_WITH_STRAY_BYTES["bad.csv"])
    args = ["finetune", "--model", str(tmp_path / "model"), "--train", str(tmp_path / "bad.csv"), "--steps", "1", "--out", str(tmp_path / "out")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "bad.csv' line 5 is not UTF-8 text" in err and err.count("\n") == 1 and not (tmp_path / "out").exists()
    assert main([*args, "--skip-bad-rows"]) == 0
    err = capsys.readouterr().err
    assert f"left out 2 rows of {tmp_path / 'bad.csv'} holding what cannot be text: lines 3, 5\n" in err
