"""The recipe's options, in the API and on the command line: every value
checked, impossible combinations refused in one line that names the option."""

import json

import pytest

from learnjax.cli import main
from learnjax.storage.checkpoints import MANIFEST
from learnjax.training.foundation import Foundation
from learnjax.training.pretraining import pretrain
from learnjax.training.recipe import MAX_POSITIONS, PretrainRecipe

CORPUS = "the cat sat on the mat.\nthe dog sat on the rug.\na bird sang in the tree.\n" * 20


@pytest.mark.parametrize("changes, message", [
    ({"d_model": 100, "n_heads": 3}, "d_model=100 must be divisible by n_heads=3"),
    ({"max_len": MAX_POSITIONS + 1}, f"max_len={MAX_POSITIONS + 1} is beyond what a model here takes"),
    ({"max_len": 1}, "max_len=1 is beyond what a model here takes: rows of 2"),
    ({"vocab_size": 7}, "vocab_size=7 must be above the 7 special tokens"),
    ({"steps": 0}, "steps=0 must be a positive whole number"),
    ({"n_layers": 2.5}, "n_layers=2.5 must be a positive whole number"),
    ({"learning_rate": 0.0}, "learning_rate=0.0 must be a number above 0"),
    ({"mask_rate": 1.0}, "mask_rate=1.0 must be a number above 0 and below 1"),
    ({"tokenizer": "bpe"}, "tokenizer must be one of word, subword; got 'bpe'"),
])
def test_an_impossible_recipe_is_refused_naming_its_field(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        PretrainRecipe(**changes)


@pytest.mark.parametrize("args, message", [
    (["--d-model", "100", "--heads", "3"], "--d-model 100 must be divisible by --heads 3"),
    (["--max-len", "1000"], "--max-len 1000 is beyond what a model here takes: rows of 2 ([CLS] and a token) to 512 tokens"),
    (["--vocab-size", "5"], "--vocab-size 5 must be above the 7 special tokens"),
    (["--learning-rate", "0"], "--learning-rate 0.0 must be a number above 0"),
    (["--batch-size", "4096"], "--batch-size 4096 is larger than the corpus"),
])
def test_the_command_names_the_option_in_one_line_and_saves_nothing(tmp_path, capsys, args, message):
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    assert main(["pretrain", "--corpus", str(tmp_path / "corpus.txt"), *args, "--out", str(tmp_path / "model")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("learnjax pretrain: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "model").exists()


def test_the_recipe_options_build_the_model_asked_for(tmp_path, capsys):
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    args = ["pretrain", "--corpus", str(tmp_path / "corpus.txt"), "--vocab-size", "60", "--max-len", "16", "--d-model", "24", "--layers", "1",
            "--heads", "3", "--steps", "3", "--batch-size", "4", "--learning-rate", "0.001", "--json", "--out", str(tmp_path / "model")]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {k: report[k] for k in ("tokenizer", "max_len", "d_model", "layers", "heads", "d_ff", "steps", "batch_size", "learning_rate")} == {
        "tokenizer": "subword", "max_len": 16, "d_model": 24, "layers": 1, "heads": 3, "d_ff": 48, "steps": 3, "batch_size": 4, "learning_rate": 0.001}
    config = json.loads((tmp_path / "model" / MANIFEST).read_text())["config"]
    assert config == {"vocab_size": report["vocabulary"], "max_len": 16, "d_model": 24, "n_layers": 1, "n_heads": 3, "d_ff": 48}


def test_continued_pre_training_keeps_the_models_size_and_position_table(tmp_path, capsys):
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    pretrain(PretrainRecipe(max_len=16, steps=2, batch_size=4, d_model=16, n_layers=1, d_ff=32), CORPUS.splitlines()).save(tmp_path / "general")
    base = ["pretrain", "--init", str(tmp_path / "general"), "--corpus", str(tmp_path / "corpus.txt"), "--out", str(tmp_path / "domain")]
    for args, message in ((["--max-len", "32"], "--max-len 32 is beyond the position table of the model being continued (16 positions)"),
                          (["--d-model", "32"], "--d-model 32 differs from the model being continued (--d-model 16)"),
                          (["--tokenizer", "subword"], "--tokenizer 'subword' differs from the model being continued (--tokenizer 'word')")):
        assert main([*base, *args]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "domain").exists()
    recipe = Foundation.load(tmp_path / "general").continuing_recipe(steps=7, max_len=8)
    assert (recipe.d_model, recipe.n_layers, recipe.max_len, recipe.steps, recipe.tokenizer) == (16, 1, 8, 7, "word")
