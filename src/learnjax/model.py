"""The models: a bag-of-words classifier and a small Transformer encoder in flax.nnx.

The encoder is BERT in miniature: token and position embeddings, pre-LayerNorm
Transformer blocks, a masked-prediction head that reuses the token embeddings
(tied weights), and a classification head on the `[CLS]` position.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from learnjax.tokenizer import PAD_ID


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    max_len: int = 32
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 512

    def __post_init__(self):
        for field in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads", "d_ff"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"EncoderConfig.{field} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown EncoderConfig fields {sorted(unknown)}; expected {sorted(names)}")
        return cls(**data)


# --8<-- [start:bag_of_words]
class BagOfWordsClassifier(nnx.Module):
    """Averages the word embeddings of a text (ignoring padding), then an MLP."""

    def __init__(self, vocab_size: int, n_classes: int = 2, d_embed: int = 32, d_hidden: int = 32, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab_size, d_embed, rngs=rngs)
        self.hidden = nnx.Linear(d_embed, d_hidden, rngs=rngs)
        self.out = nnx.Linear(d_hidden, n_classes, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        keep = (tokens != PAD_ID)[..., None].astype(jnp.float32)  # (B, T, 1)
        summed = (self.embed(tokens) * keep).sum(axis=1)  # (B, D)
        mean = summed / jnp.maximum(keep.sum(axis=1), 1.0)  # (B, D)
        return self.out(nnx.relu(self.hidden(mean)))  # (B, n_classes)
# --8<-- [end:bag_of_words]


# --8<-- [start:encoder]
# --8<-- [start:per_token]
def per_token(layer, x: jax.Array) -> jax.Array:
    """`layer` applied to every vector of x (..., D) as one 2-D (tokens, D) matmul.

    Same parameters, same arithmetic. But the gradient of a 3-D product contracts
    two axes, which XLA on CPU runs as a transposed product behind layout copies;
    with one flat token axis every weight gradient is a plain matrix product.
    """
    return layer(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)
# --8<-- [end:per_token]


class SelfAttention(nnx.Module):
    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.n_heads = n_heads
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)
        self.proj = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, x: jax.Array, allowed: jax.Array) -> jax.Array:
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = jnp.split(per_token(self.qkv, x), 3, axis=-1)  # 3 x (B, T, D)
        q, k, v = (t.reshape(B, T, H, D // H) for t in (q, k, v))  # (B, T, H, Dh)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(D // H)  # (B, H, T, T)
        # A position attends only to real tokens of its own text (`allowed` is (B, T, T)).
        scores = jnp.where(allowed[:, None], scores, jnp.finfo(scores.dtype).min)
        attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)  # (B, T, H, Dh)
        return per_token(self.proj, attended.reshape(B, T, D))  # (B, T, D)


class Block(nnx.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, rngs: nnx.Rngs):
        self.ln1 = nnx.LayerNorm(d_model, rngs=rngs)
        self.attn = SelfAttention(d_model, n_heads, rngs=rngs)
        self.ln2 = nnx.LayerNorm(d_model, rngs=rngs)
        self.ff1 = nnx.Linear(d_model, d_ff, rngs=rngs)
        self.ff2 = nnx.Linear(d_ff, d_model, rngs=rngs)

    def __call__(self, x: jax.Array, allowed: jax.Array) -> jax.Array:
        x = x + self.attn(self.ln1(x), allowed)
        return x + per_token(self.ff2, nnx.gelu(per_token(self.ff1, self.ln2(x))))


class Encoder(nnx.Module):
    """Token ids (B, T) to contextual vectors (B, T, D)."""

    def __init__(self, config: EncoderConfig, *, rngs: nnx.Rngs):
        self.config = config
        init = nnx.initializers.normal(0.02)
        self.token_embed = nnx.Embed(config.vocab_size, config.d_model, embedding_init=init, rngs=rngs)
        self.position_embed = nnx.Embed(config.max_len, config.d_model, embedding_init=init, rngs=rngs)
        self.blocks = nnx.List([Block(config.d_model, config.n_heads, config.d_ff, rngs=rngs) for _ in range(config.n_layers)])
        self.ln_final = nnx.LayerNorm(config.d_model, rngs=rngs)

    def __call__(self, tokens: jax.Array, segments: jax.Array | None = None) -> jax.Array:
        """`segments` (B, T) numbers the texts packed into each row (0 = padding);
        without it each row holds one text."""
        if segments is None:
            segments = (tokens != PAD_ID).astype(jnp.int32)  # (B, T)
        allowed = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)  # (B, T, T)
        positions = positions_in_segment(segments)  # (B, T): 0 at each text's [CLS]
        x = self.token_embed(tokens) + self.position_embed(positions)  # (B, T, D)
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln_final(x)


def positions_in_segment(segments: jax.Array) -> jax.Array:
    """Position of each token within its own text: 0, 1, 2, ... restarting per segment."""
    T = segments.shape[1]
    index = jnp.broadcast_to(jnp.arange(T), segments.shape)  # (B, T)
    previous = jnp.pad(segments[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    starts = jnp.where(segments != previous, index, 0)
    return index - jax.lax.cummax(starts, axis=1)


class MaskedLanguageModel(nnx.Module):
    """Encoder plus a head that scores every vocabulary word at every position."""

    def __init__(self, config: EncoderConfig, *, rngs: nnx.Rngs):
        self.encoder = Encoder(config, rngs=rngs)
        self.transform = nnx.Linear(config.d_model, config.d_model, rngs=rngs)
        self.ln = nnx.LayerNorm(config.d_model, rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((config.vocab_size,)))

    @property
    def config(self) -> EncoderConfig:
        return self.encoder.config

    def __call__(self, tokens: jax.Array, segments: jax.Array | None = None, positions: jax.Array | None = None) -> jax.Array:
        """Scores (B, T, V), or (B, P, V) at the `positions` (B, P) only: predicting
        just the hidden words skips most of the vocabulary projection."""
        h = self.encoder(tokens, segments)  # (B, T, D)
        if positions is not None:
            h = jnp.take_along_axis(h, positions[..., None], axis=1)  # (B, P, D)
        h = self.ln(nnx.gelu(per_token(self.transform, h)))
        # Tied weights: the output layer is the transposed token embedding table.
        return per_token(self.encoder.token_embed.attend, h) + self.bias[...]  # (B, ., V)
# --8<-- [end:encoder]


class EncoderClassifier(nnx.Module):
    """Encoder plus a new linear head on the `[CLS]` position."""

    def __init__(self, encoder: Encoder, n_classes: int = 2, *, rngs: nnx.Rngs):
        self.encoder = encoder
        self.head = nnx.Linear(encoder.config.d_model, n_classes, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return self.head(self.encoder(tokens)[:, 0])  # (B, n_classes)
