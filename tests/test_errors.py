"""Bad input gets a clear error naming the bad value, from the library and the CLI,
and never a raw JAX/XLA traceback."""

import json
from pathlib import Path

import jax
import pytest

from cli_process import run_cli as _cli
from cli_process import run_cli_process
from learnjax import PretrainRecipe, fill_mask, foundation_model, mask_tokens, pretrain
from learnjax.data.labeled_files import read_labeled
from learnjax.models.transformer import TransformerConfig
from learnjax.storage.checkpoints import CheckpointError
from learnjax.training.finetuning import finetune
from learnjax.training.foundation import Foundation
from one_line import is_one_line


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _saved_model(tmp_path: Path) -> Path:
    return foundation_model().save(tmp_path / "model")


# (case, callable taking tmp_path, expected exception, text the message must contain)
LIBRARY_CASES = [
    ("empty corpus", lambda t: pretrain(PretrainRecipe(steps=1), []), ValueError, "corpus is empty"),
    ("corpus of blank texts", lambda t: pretrain(PretrainRecipe(steps=1), ["", " "]), ValueError, "no usable tokens"),
    ("batch larger than the corpus", lambda t: pretrain(PretrainRecipe(steps=1, batch_size=64), ["a b c"] * 3), ValueError, "batch_size=64 is larger"),
    ("mask rate 0", lambda t: mask_tokens(jax.random.key(0), [[3, 5, 6]], 10, rate=0.0), ValueError, "got 0.0"),
    ("mask rate 1.5", lambda t: mask_tokens(jax.random.key(0), [[3, 5, 6]], 10, rate=1.5), ValueError, "got 1.5"),
    ("fill-mask without [MASK]", lambda t: fill_mask(foundation_model(), "no mask"), ValueError, "found 0"),
    ("fill-mask with two [MASK]", lambda t: fill_mask(foundation_model(), "[MASK] and [MASK]"), ValueError, "found 2"),
    ("fill-mask text too long", lambda t: fill_mask(foundation_model(), "word " * 40 + "[MASK]"), ValueError, "at most 31"),
    ("top_k of 0", lambda t: fill_mask(foundation_model(), "a [MASK]", top_k=0), ValueError, "top_k must be a positive int, got 0"),
    ("model directory missing", lambda t: Foundation.load(t / "nowhere"), CheckpointError, "does not exist"),
    ("not a model directory", lambda t: Foundation.load(t), CheckpointError, "learnjax.json is missing"),
    ("labeled file: missing column", lambda t: read_labeled(_write(t, "a.csv", "message,label\nhi,spam\n")), ValueError, "no 'text' column"),
    ("labeled file: blank line", lambda t: read_labeled(_write(t, "b.csv", "text,label\nhi,spam\n\nyo,ham\n")), ValueError, "line 3: blank line"),
    ("labeled file: bad encoding", lambda t: read_labeled(_write(t, "c.tsv", b"text\tlabel\ncaf\xe9\tham\n")), ValueError, "not UTF-8"),
    ("labeled file: one class", lambda t: read_labeled(_write(t, "d.jsonl", '{"text": "a", "label": "spam"}\n{"text": "b", "label": "spam"}\n')), ValueError, "at least two classes"),
    ("labeled file: bad JSON", lambda t: read_labeled(_write(t, "e.jsonl", '{"text": "a", "label": \n')), ValueError, "line 1: not valid JSON"),
    ("labeled file: unknown format", lambda t: read_labeled(_write(t, "f.xlsx", "x")), ValueError, "unknown format '.xlsx'"),
    ("label the model does not have", lambda t: finetune(foundation_model(), ["a", "b"], ["spam", "ham"], label_names=("not spam", "spam")), ValueError, "'ham' is not one of the model's labels"),
    ("fine-tune mode", lambda t: finetune(foundation_model(), ["a", "b"], ["x", "y"], mode="partial"), ValueError, "got 'partial'"),
    ("config with a bad field", lambda t: TransformerConfig(vocab_size=0), ValueError, "vocab_size must be a positive int, got 0"),
]


@pytest.mark.parametrize("case, call, error, message", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_library_errors_name_the_bad_value(tmp_path, case, call, error, message):
    with pytest.raises(error) as raised:
        call(tmp_path)
    assert message in str(raised.value)


def _corrupt(path: Path, what: str) -> None:
    manifest = json.loads((path / "learnjax.json").read_text())
    if what == "partial":
        (path / manifest["params"]).unlink()
    elif what == "corrupt":
        data = bytearray((path / manifest["params"]).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (path / manifest["params"]).write_bytes(bytes(data))
    elif what == "format":
        manifest["format_version"] = 99
        (path / "learnjax.json").write_text(json.dumps(manifest))
    elif what == "config":
        manifest["config"]["d_model"] = 48
        (path / "learnjax.json").write_text(json.dumps(manifest))
    elif what == "vocabulary":
        manifest["vocab_size"] += 1
        (path / "learnjax.json").write_text(json.dumps(manifest))
    elif what == "kind":
        manifest["kind"] = "classifier"
        (path / "learnjax.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "what, message",
    [
        ("partial", "is partial"),
        ("corrupt", "corrupt (checksum mismatch)"),
        ("format", "format version 99"),
        ("config", "do not fit"),
        ("vocabulary", "words, the manifest says"),
        ("kind", "holds a 'classifier' model, not a 'masked_lm' or 'next_word_lm' model"),
    ],
)
def test_damaged_model_directories_are_named(tmp_path, what, message):
    path = _saved_model(tmp_path)
    _corrupt(path, what)
    with pytest.raises(CheckpointError) as raised:
        Foundation.load(path)
    assert message in str(raised.value) and str(path) in str(raised.value)


CLI_CASES = [
    (["fill-mask", "--top-k", "0", "a [MASK]"], 2, "argument --top-k: must be at least 1, got 0"),
    (["pretrain", "--steps", "0", "--out", "x"], 2, "argument --steps: must be at least 1, got 0"),
    (["finetune", "--train", "{tmp}/missing.csv", "--out", "{tmp}/o"], 1, "missing.csv' does not exist"),
    (["finetune", "--train", "{tmp}/one.csv", "--out", "{tmp}/o"], 1, "at least two classes"),
    (["finetune", "--train", "{tmp}/one.csv", "--mode", "half", "--out", "{tmp}/o"], 1, "got 'half'"),
    (["classify", "--model", "{tmp}/nowhere", "hello"], 1, "does not exist"),
    (["pretrain", "--corpus", "{tmp}/empty.txt", "--out", "{tmp}/o"], 1, "corpus is empty"),
    (["pretrain", "--strict", "--corpus", "{tmp}/latin1.txt", "--out", "{tmp}/o"], 1, "is not UTF-8"),  # by default the byte is dropped
]


@pytest.mark.parametrize("args, status, message", CLI_CASES, ids=[" ".join(c[0][:2]) + f" -> {c[2][:30]}" for c in CLI_CASES])
def test_cli_errors_are_one_line(tmp_path, args, status, message):
    _write(tmp_path, "one.csv", "text,label\na,spam\nb,spam\n")
    _write(tmp_path, "empty.txt", "\n\n")
    _write(tmp_path, "latin1.txt", b"caf\xe9 au lait\n")
    result = _cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == status, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and is_one_line(result.stderr), result.stderr
    assert not (tmp_path / "o").exists(), "a failed command saves nothing"


def test_debug_flag_shows_the_traceback(tmp_path):
    result = run_cli_process("--debug", "classify", "--model", str(tmp_path / "nowhere"), "hi")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_diverging_training_stops_and_keeps_the_saved_model(tmp_path):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat.\nthe dog sat on the rug.\n" * 30, encoding="utf-8")
    corpus_texts = (tmp_path / "corpus.txt").read_text(encoding="utf-8").splitlines()
    pretrain(PretrainRecipe(steps=5, batch_size=8), corpus_texts).save(tmp_path / "model")  # the model to keep
    before = (tmp_path / "model" / "learnjax.json").read_bytes()
    bad = _cli("pretrain", "--corpus", str(tmp_path / "corpus.txt"), "--steps", "60", "--batch-size", "8",
               "--learning-rate", "1e30", "--overwrite", "--out", str(tmp_path / "model"))
    assert bad.returncode == 1
    assert "the loss became" in bad.stderr and "learning rate ten times smaller" in bad.stderr
    assert (tmp_path / "model" / "learnjax.json").read_bytes() == before
    Foundation.load(tmp_path / "model")  # the last good model still loads
