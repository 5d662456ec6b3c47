"""BERT-style masking: the pseudo-labels of self-supervised learning.

A random 15% of the real tokens is chosen; of those, 80% become `[MASK]`, 10% a
random word and 10% stay as they are. The model must predict the original word
at every chosen position, so the text labels itself.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from learnjax.text.tokenizer import MASK_ID, PAD_ID, SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)


def check_mask_rate(rate: float) -> float:
    if not isinstance(rate, (int, float)) or not 0 < rate < 1:
        raise ValueError(f"mask rate must be a number strictly between 0 and 1, got {rate!r}")
    return float(rate)


# --8<-- [start:mask_words]
def mask_words(key: jax.Array, tokens: jax.Array, vocab_size: int, rate=0.15):
    """BERT's recipe: choose a share `rate` of the real tokens (B, T); of
    those, 80% become [MASK], 10% a random word, 10% stay. Returns what the
    model sees, the words it must recover ([PAD] elsewhere) and a weight of 1
    where a prediction is scored."""
    k_choose, k_action, k_random = jax.random.split(key, 3)
    maskable = tokens >= N_SPECIAL  # never [PAD], [UNK], [MASK] or [CLS]
    chosen = maskable & (jax.random.uniform(k_choose, tokens.shape) < rate)
    action = jax.random.uniform(k_action, tokens.shape)  # which of the three
    random_words = jax.random.randint(k_random, tokens.shape, N_SPECIAL,
                                      vocab_size)
    inputs = jnp.where(chosen & (action < 0.8), MASK_ID, tokens)
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs = jnp.where(swap, random_words, inputs)
    targets = jnp.where(chosen, tokens, PAD_ID)  # what the model must recover
    weights = chosen.astype(jnp.float32)  # 1 where a prediction is scored
    return inputs, targets, weights
# --8<-- [end:mask_words]


@jax.jit
def _mask_tokens(key: jax.Array, tokens: jax.Array, rate: float, vocab_size: int):
    """`mask_words` compiled, with `rate` and `vocab_size` traced (one program for any)."""
    return mask_words(key, tokens, vocab_size, rate)


def mask_tokens(key: jax.Array, tokens: jax.Array, vocab_size: int, rate: float = 0.15):
    """Chooses positions to predict and corrupts them, as a pure function of `key`.

    Args:
      key: a PRNG key; the same key always masks the same positions.
      tokens: int array (B, T) of token ids.
      vocab_size: size of the vocabulary (random replacements are drawn from it).
      rate: share of the maskable tokens to choose, strictly between 0 and 1.

    Returns:
      `(inputs, targets, weights)`, each (B, T): the corrupted ids the
        model sees, the original ids at chosen positions ([PAD] elsewhere) and a
        float mask that is 1.0 exactly at the chosen positions.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> tokens = jnp.array([[3, 10, 11, 12, 0, 0]])
      >>> inputs, targets, weights = mask_tokens(jax.random.key(0), tokens, vocab_size=20, rate=0.5)
      >>> bool(((weights == 1) == (targets != 0)).all())
      True
    """
    rate = check_mask_rate(rate)
    if vocab_size <= N_SPECIAL:
        raise ValueError(f"vocab_size must exceed the {N_SPECIAL} special tokens, got {vocab_size}")
    return _mask_tokens(key, jnp.asarray(tokens), rate, vocab_size)


# --8<-- [start:select_predictions]
@partial(jax.jit, static_argnames="max_predictions")
def select_predictions(targets: jax.Array, weights: jax.Array, max_predictions: int):
    """Keeps the scored positions of each row, at most `max_predictions` of them.

    Returns `(positions, targets, weights)`, each (B, max_predictions), so that the
    model scores the vocabulary at those positions only. Rows with fewer scored
    positions are filled with weight-0 slots; in the rare row with more, the
    extra ones are dropped (BERT's `max_predictions_per_seq`).
    """
    _, positions = jax.lax.top_k(weights, max_predictions)  # scored positions first
    take = lambda a: jnp.take_along_axis(a, positions, axis=1)
    return positions, take(targets), take(weights)
# --8<-- [end:select_predictions]


def max_predictions_for(max_len: int, rate: float) -> int:
    """Prediction slots per row: the expected count plus a margin that a row
    rarely exceeds (binomial spread), capped at the row length."""
    return min(max_len, math.ceil(max_len * rate) + 5)


@partial(jax.jit, static_argnames=("vocab_size", "max_predictions"))
def _masked_batch(key, tokens, segments, rate, vocab_size, max_predictions):
    inputs, targets, weights = _mask_tokens(key, tokens, rate, vocab_size)
    positions, targets, weights = select_predictions(targets, weights, max_predictions)
    return {"inputs": inputs, "segments": segments, "positions": positions, "targets": targets, "weights": weights}


def masked_batch(key: jax.Array, tokens, segments, vocab_size: int, rate: float = 0.15, max_predictions: int | None = None) -> dict:
    """Masks `tokens` and picks the prediction slots: the batch `masked_prediction_step` takes."""
    rate = check_mask_rate(rate)
    if max_predictions is None:
        max_predictions = max_predictions_for(tokens.shape[1], rate)
    return _masked_batch(key, jnp.asarray(tokens), jnp.asarray(segments), rate, vocab_size, max_predictions)
