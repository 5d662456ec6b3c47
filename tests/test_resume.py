"""Long runs lose nothing: checkpoints during training, and a resumed run that
ends exactly as the uninterrupted one, bit for bit, in every training loop."""

import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from cli_process import run_cli
from learnjax.storage import checkpoints
from learnjax.storage.checkpoints import CHECKPOINT_FOLDER, MANIFEST, CheckpointError, TrainingCheckpoints
from learnjax.training.finetuning import FinetuneSettings, finetune
from learnjax.training.foundation import Foundation
from learnjax.training.pretraining import pretrain
from learnjax.training.recipe import PretrainRecipe

TEXTS = ["the cat sat on the mat.", "the dog sat on the rug.", "a bird sang in the tree.", "the cat saw the bird."] * 20
SMALL = dict(steps=50, batch_size=8, d_model=16, n_layers=1, d_ff=32)


def _interrupt_after(monkeypatch, saves: int) -> list[int]:
    """Makes the run stop as Ctrl-C would, right after its `saves`-th checkpoint."""
    save, steps = checkpoints.save, []

    def saving(*args, **kwargs):
        result = save(*args, **kwargs)
        if "training" in (args[4] if len(args) > 4 else kwargs.get("metadata") or {}):
            steps.append(args[4]["training"]["step"])
            if len(steps) == saves:
                raise KeyboardInterrupt
        return result

    monkeypatch.setattr(checkpoints, "save", saving)
    return steps


def _same_arrays(a: nnx.Module, b: nnx.Module) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))))


@pytest.mark.parametrize("objective", ["masked", "next-word"])
def test_an_interrupted_pretraining_resumes_to_the_very_model_of_an_uninterrupted_run(objective, tmp_path, monkeypatch):
    recipe = PretrainRecipe(objective=objective, **SMALL)
    uninterrupted = pretrain(recipe, TEXTS)
    with monkeypatch.context() as patch:
        saved_at = _interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            pretrain(recipe, TEXTS, checkpoint_dir=tmp_path / "ck", checkpoint_every=15)
    assert saved_at == [15, 30] and TrainingCheckpoints(tmp_path / "ck", "").step() == 30
    resumed = pretrain(recipe, TEXTS, checkpoint_dir=tmp_path / "ck", checkpoint_every=15, resume=True)
    assert resumed.history.loss == uninterrupted.history.loss and len(resumed.history.loss) == 50
    assert _same_arrays(resumed.model, uninterrupted.model)


def test_an_interrupted_fine_tuning_resumes_to_the_very_classifier_of_an_uninterrupted_run(tmp_path, monkeypatch):
    foundation = pretrain(PretrainRecipe(**{**SMALL, "steps": 5}), TEXTS)
    texts, labels, settings = ["the cat sat.", "a bird sang."] * 8, ["cat", "bird"] * 8, FinetuneSettings(steps=30, batch_size=4, head_steps=10)
    uninterrupted = finetune(foundation, texts, labels, settings=settings)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            finetune(foundation, texts, labels, settings=settings, checkpoint_dir=tmp_path / "ck", checkpoint_every=10)
    resumed = finetune(foundation, texts, labels, settings=settings, checkpoint_dir=tmp_path / "ck", resume=True)
    assert resumed.history.loss == uninterrupted.history.loss
    assert _same_arrays(resumed.model, uninterrupted.model)


def test_resuming_with_other_settings_or_without_a_checkpoint_is_refused(tmp_path, monkeypatch):
    recipe = PretrainRecipe(**SMALL)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            pretrain(recipe, TEXTS, checkpoint_dir=tmp_path / "ck", checkpoint_every=20)
    with pytest.raises(CheckpointError, match="it was made with learning_rate=0.005, this run has learning_rate=0.001"):
        pretrain(recipe.replace(learning_rate=1e-3), TEXTS, checkpoint_dir=tmp_path / "ck", resume=True)
    with pytest.raises(CheckpointError, match="it was made with corpus="):
        pretrain(recipe, TEXTS[:-4], checkpoint_dir=tmp_path / "ck", resume=True)
    with pytest.raises(CheckpointError, match="there is no checkpoint to resume from"):
        pretrain(recipe, TEXTS, checkpoint_dir=tmp_path / "none", resume=True)
    with pytest.raises(ValueError, match="need a checkpoint_dir"):
        pretrain(recipe, TEXTS, checkpoint_every=10)


# Runs the command, and ends it the hard way right after its second checkpoint:
# SIGKILL (nothing runs after it), or SIGINT, as Ctrl-C at a terminal.
_STOPPED_AFTER_TWO_CHECKPOINTS = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from learnjax.storage import checkpoints
save, saved = checkpoints.save, []

def saving(*args, **kwargs):
    result = save(*args, **kwargs)
    if "training" in args[4]:
        saved.append(1)
        if len(saved) == 2:
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return result

checkpoints.save = saving
from learnjax.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cli(*args, stopped_by: str | None = None, script=None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(script), stopped_by] if stopped_by else [sys.executable, "-m", "learnjax.cli"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same small pre-training from the command line, run through, and killed with SIGKILL after its second checkpoint."""
    root = tmp_path_factory.mktemp("resume")
    (root / "corpus.txt").write_text("\n".join(TEXTS), encoding="utf-8")
    (root / "stop.py").write_text(_STOPPED_AFTER_TWO_CHECKPOINTS, encoding="utf-8")
    args = ["pretrain", "--corpus", root / "corpus.txt", "--steps", 60, "--batch-size", 8, "--d-model", 16, "--layers", 1, "--json"]
    through = _cli(*args, "--out", root / "through")
    assert through.returncode == 0, through.stderr
    killed = _cli(*args, "--checkpoint-every", 20, "--out", root / "killed", stopped_by="SIGKILL", script=root / "stop.py")
    assert killed.returncode == -9, killed.stderr
    shutil.copytree(root / "killed", root / "killed-copy")  # as the kill left it, for the tests that resume otherwise
    return root, args


def test_a_killed_run_resumes_from_its_last_checkpoint_to_the_very_model_of_an_uninterrupted_one(runs):
    root, args = runs
    assert not (root / "killed" / MANIFEST).exists() and TrainingCheckpoints(root / "killed" / CHECKPOINT_FOLDER, "").step() == 40
    resumed = _cli(*args, "--checkpoint-every", 20, "--resume", "--out", root / "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_at_step"] == 40
    through, again = (json.loads((root / name / MANIFEST).read_text()) for name in ("through", "killed"))
    assert again["params_sha256"] == through["params_sha256"]  # the very same parameters, bit for bit
    assert again["metadata"]["history"] == through["metadata"]["history"]
    assert not (root / "killed" / CHECKPOINT_FOLDER).exists()  # the finished model replaces its checkpoints


def test_resuming_with_another_option_names_the_option(runs, tmp_path):
    root, args = runs
    shutil.copytree(root / "killed-copy", tmp_path / "again")
    other = run_cli(*[a if a != 60 else 80 for a in args], "--resume", "--out", tmp_path / "again")
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert "it was made with --steps 60, this run has --steps 80" in other.stderr


def test_ctrl_c_keeps_the_earlier_model_and_the_last_checkpoint_and_says_how_to_resume(runs, tmp_path):
    root, args = runs
    out = tmp_path / "model"
    Foundation.load(root / "through").save(out)  # an earlier model in --out
    before = (out / MANIFEST).read_bytes()
    stopped = _cli(*args, "--checkpoint-every", 20, "--overwrite", "--out", out, stopped_by="SIGINT", script=root / "stop.py")
    assert stopped.returncode == 130 and stopped.stdout == ""
    assert stopped.stderr == (f'{{"error": "interrupted; the model in {out} is unchanged; the last checkpoint, at step 40, is in '
                              f'{out / CHECKPOINT_FOLDER}: run the same command with --resume to continue", "command": "pretrain"}}\n')
    assert (out / MANIFEST).read_bytes() == before
    Foundation.load(out)
    assert TrainingCheckpoints(out / CHECKPOINT_FOLDER, "").step() == 40


def test_the_commands_resume_only_from_a_checkpoint(runs, tmp_path, capsys):
    from learnjax.cli import main

    root, _ = runs
    (tmp_path / "labeled.csv").write_text("text,label\nthe cat sat.,cat\na bird sang.,bird\n", encoding="utf-8")
    assert main(["finetune", "--model", str(root / "through"), "--train", str(tmp_path / "labeled.csv"), "--resume", "--out", str(tmp_path / "c")]) == 1
    assert capsys.readouterr().err == f"learnjax finetune: error: there is no checkpoint to resume from in {str(tmp_path / 'c' / CHECKPOINT_FOLDER)!r}\n"
