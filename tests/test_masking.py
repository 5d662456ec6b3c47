"""Masking: a pure function of the key that hides only real words, BERT-style."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learnjax.text.tokenizer import CLS_ID, MASK_ID, PAD_ID
from learnjax.training.masking import mask_tokens, masked_batch, select_predictions


def _tokens(rows=256, length=32, vocab=100):
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, vocab, size=(rows, length)).astype(np.int32)
    tokens[:, 0] = CLS_ID
    tokens[:, 24:] = PAD_ID
    return tokens


def test_same_key_same_mask_and_targets_only_where_weighted():
    tokens = _tokens()
    a = mask_tokens(jax.random.key(1), tokens, 100)
    b = mask_tokens(jax.random.key(1), tokens, 100)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    inputs, targets, weights = map(np.asarray, a)
    assert ((weights == 1) == (targets != PAD_ID)).all()
    np.testing.assert_array_equal(targets[weights == 1], tokens[weights == 1])
    assert not weights[:, 0].any() and not weights[:, 24:].any()  # [CLS] and padding never chosen


def test_rate_and_80_10_10_split():
    tokens = _tokens(rows=2048)
    inputs, targets, weights = map(np.asarray, mask_tokens(jax.random.key(0), tokens, 100, rate=0.15))
    chosen = weights == 1
    assert abs(chosen.sum() / (tokens >= 4).sum() - 0.15) < 0.01
    as_mask = (inputs[chosen] == MASK_ID).mean()
    unchanged = (inputs[chosen] == tokens[chosen]).mean()
    assert abs(as_mask - 0.8) < 0.02
    assert abs(unchanged - 0.1) < 0.02 + 0.01  # random replacements can hit the same word


@pytest.mark.parametrize("rate", [0, 1, -0.1, 1.5, float("nan")])
def test_bad_rate_is_named(rate):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        mask_tokens(jax.random.key(0), _tokens(), 100, rate=rate)


def test_select_predictions_keeps_every_scored_position():
    weights = jnp.array([[0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]], jnp.float32)
    targets = jnp.array([[0, 7, 0, 9, 0, 0], [0, 0, 0, 0, 0, 0]], jnp.int32)
    positions, picked, picked_weights = select_predictions(targets, weights, 3)
    assert sorted(np.asarray(positions[0][:2]).tolist()) == [1, 3]
    assert float(picked_weights.sum()) == 2 and sorted(np.asarray(picked[0][:2]).tolist()) == [7, 9]


def test_masked_batch_shapes():
    tokens = _tokens(rows=4)
    segments = (tokens != PAD_ID).astype(np.int32)
    batch = masked_batch(jax.random.key(0), tokens, segments, 100, rate=0.25)
    assert batch["inputs"].shape == (4, 32)
    assert batch["positions"].shape == batch["targets"].shape == batch["weights"].shape == (4, 13)
