"""Checkpoints: bit-exact round trips, atomic saves, and the same result from the same seed."""

import os

import jax
import numpy as np
import pytest
from flax import nnx

from learnjax import PretrainRecipe, corpus, foundation_model, messages, pretrain
from learnjax.checkpoints import MANIFEST
from learnjax.finetuning import FinetuneSettings, finetune
from learnjax.pretraining import Foundation

SMALL = PretrainRecipe(steps=40, batch_size=16)


@pytest.fixture(scope="module")
def small_texts():
    return corpus.build_corpus(400)


def _params(model):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model))]


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, small_texts):
    first = pretrain(SMALL, small_texts)
    first.save(tmp_path / "model")
    second = pretrain(SMALL.replace(seed=1), small_texts)

    real_replace = os.replace

    def crash_on_manifest(src, dst):
        if os.path.basename(dst) == MANIFEST:
            raise KeyboardInterrupt("interrupted while saving")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        second.save(tmp_path / "model")
    monkeypatch.setattr(os, "replace", real_replace)

    loaded = Foundation.load(tmp_path / "model")
    for a, b in zip(_params(loaded.model), _params(first.model)):
        np.testing.assert_array_equal(a, b)


def test_saving_again_replaces_and_cleans_up(tmp_path, small_texts):
    first = pretrain(SMALL, small_texts)
    second = pretrain(SMALL.replace(seed=1), small_texts)
    first.save(tmp_path / "model")
    second.save(tmp_path / "model")
    assert len(list((tmp_path / "model").glob("params-*"))) == 1
    for a, b in zip(_params(Foundation.load(tmp_path / "model").model), _params(second.model)):
        np.testing.assert_array_equal(a, b)


def test_pretraining_is_deterministic(small_texts):
    a = pretrain(SMALL, small_texts)
    b = pretrain(SMALL, small_texts)
    assert a.history.loss == b.history.loss
    for x, y in zip(_params(a.model), _params(b.model)):
        np.testing.assert_array_equal(x, y)
    c = pretrain(SMALL.replace(seed=1), small_texts)
    assert c.history.loss != a.history.loss


def test_fine_tuning_is_deterministic():
    foundation = foundation_model()
    items = messages.balanced_subset(messages.labeled_splits()["pool"], 32, seed=0)
    texts, labels = [m.text for m in items], [m.label for m in items]
    runs = [finetune(foundation, texts, labels, settings=FinetuneSettings(steps=20), label_names=messages.LABEL_NAMES) for _ in range(2)]
    assert runs[0].history.loss == runs[1].history.loss
    probe = [m.text for m in messages.labeled_splits()["test"][:16]]
    np.testing.assert_array_equal(runs[0].predict_proba(probe), runs[1].predict_proba(probe))
