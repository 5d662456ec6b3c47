"""Bad input from one's own files: one line, a non-zero exit, and nothing lost
(a model already in --out, a results file already written)."""

import json

import pytest

from learnjax.checkpoints import MANIFEST
from learnjax.cli import main
from learnjax.finetuning import FinetuneSettings, finetune
from learnjax.pretraining import Foundation, PretrainRecipe, pretrain
from learnjax.textfiles import MAX_LINE_BYTES

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
    (["pretrain", "--corpus", "{root}/nul.txt"], 1, "{root}/nul.txt' line 2 holds NUL characters: a binary file, not text"),
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
