"""The language models' steps written to be read: the clearest correct version.

The Learn pages show these. The library's own versions (`learnjax.models.transformer`,
`learnjax.training.steps`, `learnjax.models.generation`) compute the same numbers faster;
tests/test_readable.py proves that the two agree, and the "Training steps,
made fast" page shows what each faster formulation buys. Both read the same
parameters, so a model trained by either runs in both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from learnjax.models.generation import NEVER_WRITTEN
from learnjax.models.transformer import MaskedLanguageModel, NextWordModel, SelfAttention, Transformer, positions_in_segment
from learnjax.text.tokenizer import END_ID, PAD_ID
from learnjax.training.steps import next_word_targets


# --8<-- [start:attention_mask]
def attention_mask(segments: jax.Array, causal: bool = False) -> jax.Array:
    """Which tokens each token may look at: (B, T, T), row = the looking token.

    `segments` (B, T) numbers the texts packed into a row (0 = padding). A token
    sees the tokens of its own text; `causal` (a decoder) keeps only itself and
    the tokens before it, so it cannot peek at the words it must predict.
    """
    same_text = segments[:, :, None] == segments[:, None, :]  # (B, T, T)
    allowed = same_text & (segments[:, None, :] > 0)  # never padding
    if causal:
        T = segments.shape[1]
        allowed &= jnp.tril(jnp.ones((T, T), bool))  # column <= row
    return allowed
# --8<-- [end:attention_mask]


# --8<-- [start:attention]
def attention(layer: SelfAttention, x: jax.Array, allowed: jax.Array):
    """Each token gathers information from the tokens it is `allowed` to see.

    Returns the new vectors (B, T, D) and the attention weights (B, H, T, T):
    how much each token (row) takes from each other token (column), per head.
    """
    B, T, D = x.shape
    H = layer.n_heads
    q, k, v = jnp.split(layer.qkv(x), 3, axis=-1)  # query, key, value: (B, T, D)
    q, k, v = (a.reshape(B, T, H, D // H) for a in (q, k, v))  # H heads
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(D // H)  # B, H, T, T
    scores = jnp.where(allowed[:, None], scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1)  # each row adds up to 1
    mixed = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(B, T, D)
    return layer.proj(mixed), weights
# --8<-- [end:attention]


# --8<-- [start:transformer]
def transformer(model: Transformer, tokens, segments=None, causal=False):
    """Token ids (B, T) to one vector per token (B, T, D), and the attention
    weights of every layer (a list of (B, H, T, T))."""
    if segments is None:  # one text per row
        segments = (tokens != PAD_ID).astype(jnp.int32)  # (B, T)
    allowed = attention_mask(segments, causal)
    positions = positions_in_segment(segments)  # 0 at each text's first token
    x = model.token_embed(tokens) + model.position_embed(positions)  # (B, T, D)
    all_weights = []
    for block in model.blocks:
        attended, weights = attention(block.attn, block.ln1(x), allowed)
        x = x + attended  # each block adds to the vectors, never replaces them
        x = x + block.ff2(nnx.gelu(block.ff1(block.ln2(x))))  # then per token
        all_weights.append(weights)
    return model.ln_final(x), all_weights
# --8<-- [end:transformer]


# --8<-- [start:scores]
def masked_word_scores(model: MaskedLanguageModel, tokens, segments=None):
    """Logits (B, T, V): a score for every vocabulary word at every position."""
    h, _ = transformer(model.encoder, tokens, segments)  # sees both sides
    h = model.ln(nnx.gelu(model.transform(h)))
    # Tied weights: the output layer is the token embedding table, transposed.
    return model.encoder.token_embed.attend(h) + model.bias[...]


def next_word_scores(model: NextWordModel, tokens, segments=None):
    """Logits (B, T, V): at each position, a score for every next word."""
    h, _ = transformer(model.decoder, tokens, segments, causal=True)
    return model.decoder.token_embed.attend(h)
# --8<-- [end:scores]


# --8<-- [start:masked_word_step]
def masked_word_loss(model, inputs, segments, targets, weights):
    logits = masked_word_scores(model, inputs, segments)  # (B, T, V)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    n_hidden = jnp.maximum(weights.sum(), 1.0)
    loss = (losses * weights).sum() / n_hidden  # only the hidden words count
    hits = logits.argmax(-1) == targets  # (B, T)
    return loss, (hits * weights).sum() / n_hidden


@nnx.jit
def masked_word_step(model, optimizer, inputs, segments, targets, weights):
    """One step: predict the hidden words, then move every parameter a little
    along the gradient that makes the right words more likely."""
    grad_fn = nnx.value_and_grad(masked_word_loss, has_aux=True)
    (loss, accuracy), grads = grad_fn(model, inputs, segments, targets, weights)
    optimizer.update(model, grads)
    return loss, accuracy
# --8<-- [end:masked_word_step]


# --8<-- [start:next_word_step]
def next_word_loss(model, tokens, segments, learn):
    logits = next_word_scores(model, tokens, segments)  # (B, T, V)
    targets, weights = next_word_targets(tokens, segments, learn)  # shifted
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    n_scored = jnp.maximum(weights.sum(), 1.0)
    loss = (losses * weights).sum() / n_scored
    hits = logits.argmax(-1) == targets  # (B, T)
    return loss, (hits * weights).sum() / n_scored


@nnx.jit
def next_word_step(model, optimizer, tokens, segments, learn):
    """One step: predict every token from the ones before it, then update."""
    grad_fn = nnx.value_and_grad(next_word_loss, has_aux=True)
    (loss, accuracy), grads = grad_fn(model, tokens, segments, learn)
    optimizer.update(model, grads)
    return loss, accuracy
# --8<-- [end:next_word_step]


# --8<-- [start:write]
def write(model: NextWordModel, prompt_ids: list[int], max_new_tokens: int,
          temperature: float = 0.0, key: jax.Array | None = None) -> list[int]:
    """Continues a prompt one token at a time, reading the whole text again at
    every step. Temperature 0 picks the likeliest token (greedy); above 0 it
    draws one at random, by probabilities flattened as the temperature rises."""
    ids = list(prompt_ids)  # [CLS] and the prompt's words
    for _ in range(max_new_tokens):
        logits = next_word_scores(model, jnp.array([ids]))[0, -1]  # the last
        logits = logits.at[jnp.array(NEVER_WRITTEN)].set(-jnp.inf)  # [PAD]...
        if temperature == 0:
            token = int(logits.argmax())
        else:
            key, draw = jax.random.split(key)
            token = int(jax.random.categorical(draw, logits / temperature))
        ids.append(token)
        if token == END_ID:  # the model ended the text
            break
    return ids[len(prompt_ids):]
# --8<-- [end:write]
