"""The command line for next-word models: `pretrain --objective next-word`, `generate`,
and the one-line errors for models of the wrong kind."""

import json

import pytest

from cli_process import run_cli
from learnjax.cli import main
from one_line import is_one_line


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    """A next-word model pre-trained by the CLI on a small folder of text."""
    root = tmp_path_factory.mktemp("writer")
    (root / "corpus").mkdir()
    (root / "corpus" / "a.txt").write_text("the cat sat on the mat.\nthe dog sat on the rug.\n" * 40, encoding="utf-8")
    result = run_cli("pretrain", "--objective", "next-word", "--corpus", str(root / "corpus"), "--steps", "60",
                     "--batch-size", "8", "--json", "--out", str(root / "model"))
    assert result.returncode == 0, result.stderr
    return root / "model", json.loads(result.stdout)


def test_pretrain_next_word_saves_a_model_that_writes(writer):
    path, report = writer
    assert report["objective"] == "next-word"
    result = run_cli("generate", "--model", str(path), "--json", "--max-new-tokens", "4", "the cat sat on", "the dog")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r["prompt"] for r in data["results"]] == ["the cat sat on", "the dog"]
    first = data["results"][0]
    assert first["tokens"][0] == "the" and 1 <= len(first["tokens"]) <= 4
    assert first["text"].startswith("the")


def test_generate_with_the_built_in_model_prints_the_continuation(capsys):
    assert main(["generate", "Today I went to the café and drank"]) == 0
    assert capsys.readouterr().out.strip() == "Today I went to the café and drank coffee."


@pytest.mark.parametrize("args, status, message", [
    (["generate", ""], 1, "is empty"),
    (["generate", "--max-new-tokens", "0", "the sky"], 2, "argument --max-new-tokens: must be at least 1, got 0"),
    (["generate", "--max-new-tokens", "40", "the sky"], 1, "max_new_tokens must be between 1 and 30"),
    (["generate", "word " * 40], 1, "exceeds the model's 32-token context"),
    (["generate", "--temperature", "-0.5", "the sky"], 2, "argument --temperature: must be 0 (greedy) or positive"),
    (["generate", "--top-p", "0", "the sky"], 2, "argument --top-p: must be in (0, 1]"),
    (["generate", "--top-p", "1.5", "the sky"], 2, "argument --top-p: must be in (0, 1]"),
    (["generate", "--top-k", "-2", "the sky"], 2, "argument --top-k: must be at least 0"),
])
def test_bad_generate_input_is_one_line(args, status, message):
    result = run_cli(*args)
    assert result.returncode == status, result.stderr
    assert result.stdout == "" and message in result.stderr
    assert is_one_line(result.stderr), result.stderr


def test_a_model_of_the_wrong_kind_is_named(writer, tmp_path):
    path, _ = writer
    result = run_cli("fill-mask", "--model", str(path), "the [MASK] sat.")
    assert result.returncode == 1 and "is a next-word model, not a masked model" in result.stderr
    masked = run_cli("pretrain", "--corpus", str(path.parent / "corpus"), "--steps", "2", "--batch-size", "8", "--out", str(tmp_path / "m"))
    assert masked.returncode == 0, masked.stderr
    result = run_cli("generate", "--model", str(tmp_path / "m"), "the cat")
    assert result.returncode == 1 and "is a masked model, not a next-word model" in result.stderr
    assert is_one_line(result.stderr), result.stderr
