"""Checkpoints: bit-exact round trips, atomic saves, and the same result from the same seed."""

import os

import jax
import numpy as np
import pytest
from flax import nnx

from learnjax import PretrainRecipe, foundation_model, pretrain
from learnjax.data import corpus, messages
from learnjax.storage.checkpoints import MANIFEST
from learnjax.training.finetuning import FinetuneSettings, finetune
from learnjax.training.foundation import Foundation

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


def _as_format_1(directory):
    """Rewrites a saved masked model as the format-1 layout wrote it: four special
    tokens, so every word id 3 lower, and no rows for [END], [USER], [ASSISTANT]."""
    import hashlib
    import json

    from flax import serialization

    from learnjax.text.tokenizer import LEGACY_SPECIAL_TOKENS, SPECIAL_TOKENS

    added = len(SPECIAL_TOKENS) - len(LEGACY_SPECIAL_TOKENS)
    manifest = json.loads((directory / MANIFEST).read_text())
    vocab = json.loads((directory / manifest["tokenizer"]).read_text())["vocab"]
    (directory / manifest["tokenizer"]).write_text(json.dumps({"format": 1, "vocab": [*LEGACY_SPECIAL_TOKENS, *vocab[len(SPECIAL_TOKENS):]]}))
    params = serialization.msgpack_restore((directory / manifest["params"]).read_bytes())
    drop = lambda a: np.delete(a, range(len(LEGACY_SPECIAL_TOKENS), len(SPECIAL_TOKENS)), axis=0)  # noqa: E731
    params["encoder"]["token_embed"]["embedding"] = drop(params["encoder"]["token_embed"]["embedding"])
    params["bias"] = drop(params["bias"])
    data = serialization.msgpack_serialize(params)
    (directory / manifest["params"]).write_bytes(data)
    manifest["params_sha256"] = hashlib.sha256(data).hexdigest()
    manifest["vocab_size"] -= added
    manifest["config"]["vocab_size"] -= added
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_a_model_saved_before_the_chat_tokens_still_loads_and_predicts_the_same(tmp_path):
    from learnjax.training.foundation import fill_masks

    foundation = foundation_model()
    foundation.save(tmp_path / "model")
    _as_format_1(tmp_path / "model")
    legacy = Foundation.load(tmp_path / "model")
    assert legacy.tokenizer == foundation.tokenizer
    texts = [c.text for c in corpus.cloze_sentences()[:8]]
    for old, new in zip(fill_masks(legacy, texts), fill_masks(foundation, texts)):
        assert [p.word for p in old] == [p.word for p in new]
        np.testing.assert_allclose([p.probability for p in old], [p.probability for p in new], rtol=1e-5)
