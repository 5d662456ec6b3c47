"""The rough edges of the command line: masks written in either case, options
named in their errors, JSON everywhere (errors too), Ctrl-C, a closed pipe,
and a progress bar that shows the loss."""

import io
import json
import signal
import subprocess
import sys
import time

import pytest

from learnjax import PretrainRecipe, fill_mask, foundation_model, pretrain
from learnjax.cli import main
from learnjax.storage.checkpoints import MANIFEST
from learnjax.text.tokenizer import SPECIAL_TOKENS
from learnjax.training.finetuning import FinetuneSettings, finetune
from learnjax.training.foundation import Foundation, fill_masks
from one_line import is_one_line

CORPUS = "the cat sat on the mat.\nthe dog sat on the rug.\na bird sang in the tree.\n" * 20


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small corpus file, a small model pre-trained on it and saved, and a classifier fine-tuned from it."""
    root = tmp_path_factory.mktemp("small")
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    foundation = pretrain(PretrainRecipe(steps=5, batch_size=8), CORPUS.splitlines())
    foundation.save(root / "model")
    finetune(foundation, ["the cat sat.", "a bird sang."] * 4, ["cat", "bird"] * 4, settings=FinetuneSettings(steps=2)).save(root / "classifier")
    return root, foundation


# --- 20.4: one definition of a mask ----------------------------------------------

def test_fill_masks_gives_one_answer_per_text_in_order_whatever_the_case_of_mask():
    foundation = foundation_model()
    texts = ["the sky is [mask].", "Today I went to the café and drank [MASK].", "The [Mask] barked at the cat."]
    answers = fill_masks(foundation, texts, top_k=3)
    assert len(answers) == len(texts)
    for text, answer in zip(texts, answers):
        alone = fill_mask(foundation, text, top_k=3)  # a batch of one: the same numbers, up to rounding
        assert [p.word for p in answer] == [p.word for p in alone], text
        assert [p.probability for p in answer] == pytest.approx([p.probability for p in alone], rel=1e-4), text


@pytest.mark.parametrize("text", ["the [MASK] is [mask].", "no mask here"])
def test_a_text_without_exactly_one_mask_is_named(text):
    with pytest.raises(ValueError) as raised:
        fill_masks(foundation_model(), ["the sky is [MASK].", text])
    assert f"exactly one [MASK], found {text.lower().count('[mask]')}: {text!r}" in str(raised.value)


def test_fill_mask_reads_a_lower_case_mask_from_the_command_line(capsys):
    assert main(["fill-mask", "--top-k", "1", "Today I went to the café and drank [mask]."]) == 0
    assert capsys.readouterr().out.split()[0] == "coffee"


# --- 20.12: answers, option names, a file for a directory ----------------------------

def test_top_k_beyond_the_vocabulary_lists_every_word_and_no_special_token(small):
    _, foundation = small
    words = [p.word for p in fill_mask(foundation, "the cat sat on the [MASK].", top_k=1000)]
    assert sorted(words) == sorted(foundation.tokenizer.vocab[len(SPECIAL_TOKENS):])


@pytest.mark.parametrize("args, message", [
    (["pretrain", "--batch-size", "0", "--out", "o"], "argument --batch-size: must be at least 1, got 0"),
    (["pretrain", "--batch-size", "-3", "--out", "o"], "argument --batch-size: must be at least 1, got -3"),
    (["pretrain", "--seed", "-1", "--out", "o"], "argument --seed: must be at least 0, got -1"),
    (["finetune", "--seed", "-1", "--train", "t.csv", "--out", "o"], "argument --seed: must be at least 0, got -1"),
    (["finetune", "--head-steps", "-1", "--train", "t.csv", "--out", "o"], "argument --head-steps: must be at least 0, got -1"),
    (["fill-mask", "--top-k", "x", "a [MASK]"], "argument --top-k: expected an integer, got 'x'"),
])
def test_bad_numbers_name_their_option_in_one_line(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"learnjax {args[0]}: error: {message}\n"


def test_an_assistant_has_no_head_to_warm_up(tmp_path, capsys):
    (tmp_path / "tuning.jsonl").write_text(json.dumps({"prompt": "hi?", "response": "hello."}) + "\n", encoding="utf-8")
    assert main(["finetune", "--train", str(tmp_path / "tuning.jsonl"), "--head-steps", "5", "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.startswith("learnjax finetune: error: --head-steps warms up a classifier's new head; an assistant")
    assert not (tmp_path / "a").exists()


def test_a_batch_larger_than_the_corpus_names_the_option(small, capsys):
    root, _ = small
    assert main(["pretrain", "--corpus", str(root / "corpus.txt"), "--steps", "1", "--out", str(root / "unsaved")]) == 1
    assert "--batch-size 64 is larger than the corpus" in capsys.readouterr().err
    assert not (root / "unsaved").exists()


def test_a_file_given_as_the_model_is_said_to_be_a_file(small, capsys):
    root, _ = small
    assert main(["classify", "--model", str(root / "corpus.txt"), "hello"]) == 1
    assert capsys.readouterr().err == f"learnjax classify: error: {str(root / 'corpus.txt')!r} is a file, not a model directory\n"


# --- 20.13: JSON ------------------------------------------------------------------------

def test_classify_json_is_an_object_with_one_result_per_text_in_order(small, capsys):
    root, _ = small
    texts = ["the cat sat.", "a bird sang.", "the dog sat on the rug."]
    assert main(["classify", "--json", "--model", str(root / "classifier"), *texts]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(root / "classifier")
    assert [r["text"] for r in report["results"]] == texts
    assert all(r["label"] in ("cat", "bird") and 0.5 <= r["probability"] <= 1 for r in report["results"])


@pytest.mark.parametrize("args, status, message", [
    (["classify", "--json", "--model", "/nonexistent/model", "hi"], 1, "does not exist"),
    (["pretrain", "--json", "--steps", "0", "--out", "o"], 2, "argument --steps: must be at least 1, got 0"),
    (["fill-mask", "--json", "no mask"], 1, "found 0"),
])
def test_with_json_errors_are_json_too(capsys, args, status, message):
    assert main(args) == status
    out, err = capsys.readouterr()
    assert out == "" and is_one_line(err), err
    report = json.loads(err)
    assert report["command"] == args[0] and message in report["error"]


def _fake_experiment() -> dict:
    return {"rows": [], "seconds": 12.5, "settings": {"steps": 1, "batch_size": 2}, "learning_rates": [0.1], "seeds": [0], "runs": 0}


def test_experiment_json_says_whether_it_was_read_from_the_cache(tmp_path, monkeypatch, capsys):
    from learnjax import experiments
    from learnjax.storage.cache import cached_json

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    monkeypatch.setattr(experiments, "label_efficiency", lambda: cached_json("label-efficiency", {}, _fake_experiment))
    reports = []
    for _ in range(2):
        assert main(["experiment", "label-efficiency", "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert [r["cached"] for r in reports] == [False, True]
    assert all(r["seconds_when_computed"] == 12.5 and "seconds" not in r for r in reports)
    assert main(["experiment", "label-efficiency"]) == 0
    assert "took 12 s when first run (read from the cache now)" in capsys.readouterr().out


# --- 20.14: the fine-tuning bar shows the loss ------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_fine_tuning_progress_bar_shows_the_loss(small, monkeypatch):
    _, foundation = small
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    finetune(foundation, ["the cat sat.", "a bird sang."] * 4, ["cat", "bird"] * 4, settings=FinetuneSettings(steps=60), progress=True)
    assert "loss=" in terminal.getvalue()


# --- 20.12 and 20.9: a closed pipe, Ctrl-C -------------------------------------------------

def test_a_closed_pipe_ends_the_command_quietly(small):
    root, _ = small
    command = [sys.executable, "-m", "learnjax.cli", "fill-mask", "--model", str(root / "model"), "--top-k", "20", "the cat sat on the [MASK]."]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run.stdout.close()  # the reader is gone before anything is written, as `| head -1` is when it has its line
    _, err = run.communicate(timeout=300)
    assert err == ""
    assert run.returncode == 141  # 128 + SIGPIPE, as a shell reports for `yes | head -1`


# Runs the command as at a terminal (Ctrl-C raises KeyboardInterrupt even where
# the test runner ignores SIGINT), and touches a file once training has started.
_TRAIN_UNTIL_INTERRUPTED = """
import signal, sys
from pathlib import Path

signal.signal(signal.SIGINT, signal.default_int_handler)
import learnjax.training.pretraining as pretraining

train = pretraining.train_masked_prediction

def announced(*args, **kwargs):
    Path(sys.argv[1]).touch()
    return train(*args, **kwargs)

pretraining.train_masked_prediction = announced
from learnjax.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_ctrl_c_during_training_says_so_in_one_line_and_keeps_the_saved_model(small, tmp_path):
    root, _ = small
    model = tmp_path / "model"
    Foundation.load(root / "model").save(model)
    before = (model / MANIFEST).read_bytes()
    (tmp_path / "run.py").write_text(_TRAIN_UNTIL_INTERRUPTED, encoding="utf-8")
    started = tmp_path / "training-started"
    run = subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(started), "pretrain", "--corpus", str(root / "corpus.txt"),
                            "--steps", "1000000", "--batch-size", "8", "--max-len", "32", "--overwrite", "--out", str(model)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not started.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the file, not timing anything
    assert started.exists(), run.communicate()[1]
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert err == f"learnjax pretrain: interrupted; the model in {model} is unchanged\n"
    assert run.returncode == 130 and out == ""
    assert (model / MANIFEST).read_bytes() == before
    Foundation.load(model)
