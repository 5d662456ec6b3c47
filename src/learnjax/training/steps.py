"""The jit-compiled training steps. They depend on jax, flax and optax alone, so
they can be copied into another project as they are."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx


# --8<-- [start:supervised_step]
def classification_loss(model, tokens, labels):
    logits = model(tokens)  # (B, n_classes)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, logits


def supervised_update(model: nnx.Module, optimizer: nnx.Optimizer, tokens: jax.Array,
                      labels: jax.Array):
    """One step of supervised learning: predict the labels, then follow the gradient.

    Only the parameters the optimizer was built for (its `wrt` filter) are
    differentiated and updated, so a frozen encoder costs no gradient work.
    """
    grad_fn = nnx.value_and_grad(
        classification_loss, argnums=nnx.DiffState(0, optimizer.wrt), has_aux=True)
    (loss, logits), grads = grad_fn(model, tokens, labels)
    optimizer.update(model, grads)
    accuracy = (logits.argmax(-1) == labels).mean()
    return loss, accuracy


supervised_step = nnx.jit(supervised_update)
"""`supervised_update` compiled by XLA: forward, backward and update in one program."""
# --8<-- [end:supervised_step]


# --8<-- [start:masked_prediction_step]
def masked_prediction_loss(model, batch):
    # Scores only at the chosen positions: (B, P, V) instead of (B, T, V).
    logits = model(batch["inputs"], batch["segments"], batch["positions"])
    targets, weights = batch["targets"], batch["weights"]  # (B, P)
    per_token = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    n_scored = jnp.maximum(weights.sum(), 1.0)
    loss = (per_token * weights).sum() / n_scored  # only the hidden words count
    # A hit when the target scores highest (argmax == target but for exact ties):
    # a max and a gather, cheaper on CPU than argmax over the whole vocabulary.
    target_score = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    accuracy = ((target_score >= logits.max(-1)) * weights).sum() / n_scored
    return loss, accuracy


def masked_prediction_update(model: nnx.Module, optimizer: nnx.Optimizer,
                             batch: dict[str, jax.Array]):
    """One step of self-supervised learning: recover the hidden words.

    `batch` holds `inputs` and `segments` (B, T) and `positions`, `targets` and
    `weights` (B, P): see `learnjax.training.masking`.
    """
    grad_fn = nnx.value_and_grad(masked_prediction_loss, has_aux=True)
    (loss, accuracy), grads = grad_fn(model, batch)
    optimizer.update(model, grads)
    return loss, accuracy


masked_prediction_step = nnx.jit(masked_prediction_update)
"""`masked_prediction_update` compiled by XLA into one program: what a loop calls."""
# --8<-- [end:masked_prediction_step]


@nnx.jit
def predict_logits(model: nnx.Module, tokens: jax.Array) -> jax.Array:
    return model(tokens)


@nnx.jit
def classifier_features(model: nnx.Module, tokens: jax.Array) -> jax.Array:
    return model.features(tokens)


# --8<-- [start:next_word_step]
# --8<-- [start:next_word_targets]
def next_word_targets(tokens: jax.Array, segments: jax.Array,
                      learn: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The text labels itself: the target at each position is the token after it.

    Returns `(targets, weights)`, both (B, T): the tokens shifted left by one,
    and 1.0 where that next token is in the same text and is one to `learn`
    (B, T): every real token in pre-training, the answer's tokens only in
    instruction tuning. A text's last position, and padding, predict nothing.
    """
    targets = jnp.pad(tokens[:, 1:], ((0, 0), (0, 1)))  # (B, T)
    next_segment = jnp.pad(segments[:, 1:], ((0, 0), (0, 1)))  # (B, T)
    next_learn = jnp.pad(learn[:, 1:], ((0, 0), (0, 1)))  # (B, T)
    weights = (next_segment == segments) & (segments > 0) & (next_learn > 0)
    return targets, weights.astype(jnp.float32)
# --8<-- [end:next_word_targets]


def next_word_loss(model, tokens, segments, learn):
    logits = model(tokens, segments)  # (B, T, V): each position scores the next token
    targets, weights = next_word_targets(tokens, segments, learn)
    per_token = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    n_scored = jnp.maximum(weights.sum(), 1.0)
    loss = (per_token * weights).sum() / n_scored
    target_score = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    accuracy = ((target_score >= logits.max(-1)) * weights).sum() / n_scored
    return loss, accuracy


def next_word_update(model: nnx.Module, optimizer: nnx.Optimizer, tokens: jax.Array,
                     segments: jax.Array, learn: jax.Array):
    """One step of next-word prediction, the self-supervised objective of GPT:
    predict every token from the ones before it, then follow the gradient.

    Only the parameters the optimizer was built for (its `wrt` filter: all of
    them, or LoRA's adapters) are differentiated and updated.
    """
    grad_fn = nnx.value_and_grad(
        next_word_loss, argnums=nnx.DiffState(0, optimizer.wrt), has_aux=True)
    (loss, accuracy), grads = grad_fn(model, tokens, segments, learn)
    optimizer.update(model, grads)
    return loss, accuracy


next_word_step = nnx.jit(next_word_update)
"""`next_word_update` compiled by XLA into one program."""
# --8<-- [end:next_word_step]
