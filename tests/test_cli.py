"""The learnjax command: pre-train on the user's own text, fill masks, report errors in one line."""

import json
import subprocess
import sys

import pytest

from cli_process import run_cli
from learnjax.cli import main
from learnjax.text.tokenizer import SPECIAL_TOKENS
from one_line import is_one_line


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    """A model pre-trained by the CLI on a small corpus folder of the user's own text."""
    root = tmp_path_factory.mktemp("own")
    (root / "corpus").mkdir()
    (root / "corpus" / "a.txt").write_text("the cat sat on the mat.\nthe dog sat on the rug.\n" * 40, encoding="utf-8")
    (root / "corpus" / "b.txt").write_text("a bird sang in the tree.\n\n" * 40, encoding="utf-8")
    result = run_cli("pretrain", "--corpus", str(root / "corpus"), "--tokenizer", "word", "--steps", "30", "--batch-size", "8", "--json",
                     "--out", str(root / "model"))
    assert result.returncode == 0, result.stderr
    return root / "model", json.loads(result.stdout)


def test_pretrain_on_own_text_reports_json(own_model):
    path, report = own_model
    assert report["out"] == str(path) and report["steps"] == 30
    assert report["vocabulary"] == len(SPECIAL_TOKENS) + len({"the", "cat", "sat", "on", "mat", ".", "dog", "rug", "a", "bird", "sang", "in", "tree"})


def test_fill_mask_json_on_own_model(own_model):
    path, _ = own_model
    result = run_cli("fill-mask", "--model", str(path), "--top-k", "3", "--json", "the cat sat on the [MASK].")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["predictions"]) == 3
    assert all(0 <= p["probability"] <= 1 for p in data["predictions"])


def test_fill_mask_default_model_text_output(capsys):
    assert main(["fill-mask", "--top-k", "2", "Today I went to the café and drank [MASK]."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "coffee"


@pytest.mark.parametrize(
    "args, message",
    [
        (["fill-mask", "no mask here"], "exactly one [MASK], found 0"),
        (["fill-mask", "--model", "/nonexistent/model", "a [MASK]."], "does not exist"),
        (["pretrain", "--corpus", "/nonexistent.txt", "--out", "/tmp/x"], "does not exist"),
    ],
)
def test_errors_are_one_line_on_stderr(args, message):
    result = run_cli(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert is_one_line(result.stderr) and message in result.stderr, result.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("learnjax ")


def test_a_second_run_reuses_the_compiled_programs(own_model, tmp_path):
    import os

    path, _ = own_model
    env = {**os.environ, "LEARNJAX_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "learnjax.cli", "fill-mask", "--model", str(path), "the cat sat on the [MASK]."]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    stored = set((tmp_path / "cache" / "xla").iterdir())
    assert stored, "the first run keeps its compiled programs"
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.stdout == first.stdout
    assert set((tmp_path / "cache" / "xla").iterdir()) == stored, "the second run compiles nothing new"


def test_export_writes_a_model_trained_on_own_text_for_a_web_page(own_model, tmp_path):
    from learnjax.storage.export import read_export
    from learnjax.training.foundation import Foundation

    path, _ = own_model
    result = run_cli("export", "--model", str(path), "--out", str(tmp_path / "web"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    manifest, arrays = read_export(report["manifest"])
    foundation = Foundation.load(path)
    assert manifest["kind"] == "masked_lm" and manifest["tokenizer"]["vocab"] == foundation.tokenizer.vocab
    assert report["bytes"] == (tmp_path / "web" / "masked_lm.json").stat().st_size + (tmp_path / "web" / "masked_lm.bin").stat().st_size
    assert arrays["encoder.token_embed.embedding"].tolist() == foundation.model.encoder.token_embed.embedding[...].tolist()
    refused = run_cli("export", "--model", str(tmp_path / "web"), "--out", str(tmp_path / "again"))
    assert refused.returncode == 1 and is_one_line(refused.stderr) and "learnjax.json is missing" in refused.stderr, refused.stderr
