"""The models: a bag-of-words classifier and small Transformers in flax.nnx.

One Transformer (token and position embeddings, pre-LayerNorm blocks) serves
both kinds of language model. Read with every token seeing every other token of
its text, it is BERT's encoder: `MaskedLanguageModel` adds a head that fills in
hidden words, `EncoderClassifier` a head on the `[CLS]` position. Read with a
causal mask, each token seeing only the tokens before it, the same Transformer
is GPT's decoder: `NextWordModel` scores the next word at every position. Both
language models reuse the token embeddings as their output layer (tied weights).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from learnjax.text.tokenizer import PAD_ID


@dataclass(frozen=True)
class TransformerConfig:
    """The shape of a Transformer: of an encoder (masked prediction, classifiers)
    and of a decoder (next-word prediction) alike."""

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
                raise ValueError(f"TransformerConfig.{field} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TransformerConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown TransformerConfig fields {sorted(unknown)}; expected {sorted(names)}")
        return cls(**data)


EncoderConfig = TransformerConfig  # its name before it shaped next-word (decoder) models too; saved models store the fields only


# --8<-- [start:bag_of_words]
class BagOfWordsClassifier(nnx.Module):
    """Averages the word embeddings of a text (ignoring padding), then an MLP."""

    def __init__(self, vocab_size: int, n_classes: int = 2, d_embed: int = 32,
                 d_hidden: int = 32, *, rngs: nnx.Rngs):
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

    def __call__(self, x: jax.Array, allowed: jax.Array, cache=None, at=None):
        """Attention over the text, or with a `cache` (generation) over the keys and
        values of earlier tokens as well: x's own are written into it at the
        positions `at` (B, T) first. Returns the output (B, T, D) and the cache."""
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = jnp.split(per_token(self.qkv, x), 3, axis=-1)  # 3 x (B, T, D)
        q, k, v = (t.reshape(B, T, H, D // H) for t in (q, k, v))  # (B, T, H, Dh)
        kv = "bkhd"  # keys and values: (B, T, H, Dh)
        if cache is not None:  # (B, H, L, Dh): the products read it as it lies
            cache = cache.write(k, v, at)
            k, v, kv = cache.keys, cache.values, "bhkd"
        scores = jnp.einsum(f"bqhd,{kv}->bhqk", q, k) / jnp.sqrt(D // H)  # (B, H, T, L)
        # A position attends only to the tokens `allowed` (B, T, L) lets it see.
        scores = jnp.where(allowed[:, None], scores, jnp.finfo(scores.dtype).min)
        attended = jnp.einsum(f"bhqk,{kv}->bqhd", jax.nn.softmax(scores, axis=-1),
                              v)  # (B, T, H, Dh)
        return per_token(self.proj, attended.reshape(B, T, D)), cache  # (B, T, D)


class Block(nnx.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, rngs: nnx.Rngs):
        self.ln1 = nnx.LayerNorm(d_model, rngs=rngs)
        self.attn = SelfAttention(d_model, n_heads, rngs=rngs)
        self.ln2 = nnx.LayerNorm(d_model, rngs=rngs)
        self.ff1 = nnx.Linear(d_model, d_ff, rngs=rngs)
        self.ff2 = nnx.Linear(d_ff, d_model, rngs=rngs)

    def __call__(self, x: jax.Array, allowed: jax.Array, cache=None, at=None):
        attended, cache = self.attn(self.ln1(x), allowed, cache, at)
        x = x + attended
        return x + per_token(self.ff2,
                             nnx.gelu(per_token(self.ff1, self.ln2(x)))), cache


class Transformer(nnx.Module):
    """Token ids (B, T) to contextual vectors (B, T, D)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        init = nnx.initializers.normal(0.02)
        self.token_embed = nnx.Embed(config.vocab_size, config.d_model,
                                     embedding_init=init, rngs=rngs)
        self.position_embed = nnx.Embed(config.max_len, config.d_model,
                                        embedding_init=init, rngs=rngs)
        self.blocks = nnx.List([Block(config.d_model, config.n_heads, config.d_ff,
                                      rngs=rngs) for _ in range(config.n_layers)])
        self.ln_final = nnx.LayerNorm(config.d_model, rngs=rngs)

    def __call__(self, tokens: jax.Array, segments: jax.Array | None = None, *,
                 causal: bool = False) -> jax.Array:
        """`segments` (B, T) numbers the texts packed into each row (0 = padding);
        without it each row holds one text. `causal`: each token sees only itself
        and the tokens before it (a decoder), not the whole text (an encoder)."""
        if segments is None:
            segments = (tokens != PAD_ID).astype(jnp.int32)  # (B, T)
        allowed = ((segments[:, :, None] == segments[:, None, :])
                   & (segments[:, None, :] > 0))  # (B, T, T)
        if causal:
            # key position <= query position
            allowed &= jnp.tril(jnp.ones(allowed.shape[1:], bool))
        positions = positions_in_segment(segments)  # (B, T): 0 at each text's [CLS]
        x = self.token_embed(tokens) + self.position_embed(positions)  # (B, T, D)
        for block in self.blocks:
            x, _ = block(x, allowed)
        return self.ln_final(x)


def positions_in_segment(segments: jax.Array) -> jax.Array:
    """Position of each token within its own text: 0, 1, 2, ... restarting per text."""
    T = segments.shape[1]
    index = jnp.broadcast_to(jnp.arange(T), segments.shape)  # (B, T)
    previous = jnp.pad(segments[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    starts = jnp.where(segments != previous, index, 0)
    return index - jax.lax.cummax(starts, axis=1)


class MaskedLanguageModel(nnx.Module):
    """BERT in miniature: the Transformer as an encoder, plus a head that scores
    every vocabulary word at every position."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.encoder = Transformer(config, rngs=rngs)
        self.transform = nnx.Linear(config.d_model, config.d_model, rngs=rngs)
        self.ln = nnx.LayerNorm(config.d_model, rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((config.vocab_size,)))

    @property
    def config(self) -> TransformerConfig:
        return self.encoder.config

    def __call__(self, tokens: jax.Array, segments: jax.Array | None = None,
                 positions: jax.Array | None = None) -> jax.Array:
        """Scores (B, T, V), or (B, P, V) at the `positions` (B, P) only: predicting
        just the hidden words skips most of the vocabulary projection."""
        h = self.encoder(tokens, segments)  # (B, T, D)
        if positions is not None:
            h = jnp.take_along_axis(h, positions[..., None], axis=1)  # (B, P, D)
        h = self.ln(nnx.gelu(per_token(self.transform, h)))
        # Tied weights: the output layer is the transposed token embedding table.
        # (B, ., V)
        return per_token(self.encoder.token_embed.attend, h) + self.bias[...]
# --8<-- [end:encoder]


class EncoderClassifier(nnx.Module):
    """An encoder (a `Transformer`) plus a new linear head on the `[CLS]` position.

    Given rows (B, T), one text per row. Given windows (B, W, T), a text longer
    than a row read as W windows, each a row that starts with `[CLS]`: the
    text's logits are the mean of its windows'. A text of fewer windows is
    padded with `[CLS]`-only rows, which are left out of the mean (a window
    counts if it is the first, or holds a token after its `[CLS]`).
    """

    def __init__(self, encoder: Transformer, n_classes: int = 2, *, rngs: nnx.Rngs):
        self.encoder = encoder
        self.head = nnx.Linear(encoder.config.d_model, n_classes, rngs=rngs)

    @property
    def config(self) -> TransformerConfig:
        return self.encoder.config

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return self.head(self.features(tokens))  # (B, n_classes)

    def features(self, tokens: jax.Array) -> jax.Array:
        """What the head reads of each text (B, D): its row's `[CLS]` vector; of
        windows, the mean of theirs (the head is linear, so the text's logits
        are the mean of its windows' logits)."""
        if tokens.ndim == 2:
            return self.row_features(tokens)
        b, w, t = tokens.shape
        vectors = self.row_features(tokens.reshape(b * w, t)).reshape(b, w, -1)  # (B, W, D)
        counts = (jnp.arange(w) == 0)[None, :] | (tokens[:, :, 1] != PAD_ID)  # (B, W)
        weights = counts / counts.sum(axis=1, keepdims=True)
        return jnp.einsum("bw,bwd->bd", weights.astype(vectors.dtype), vectors)

    def row_features(self, rows: jax.Array) -> jax.Array:
        """The `[CLS]` vector of each row (B, D)."""
        return self.encoder(rows)[:, 0]


# --8<-- [start:next_word_model]
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class KVCache:
    """One layer's keys and values (B, H, L, Dh) of the tokens read so far: heads
    before positions, as attention's products read them, so that no step of
    generation has to transpose the whole cache (it did, and that was most of a
    step's time at batch 32: `benchmarks/decode_profile.py`)."""

    keys: jax.Array
    values: jax.Array

    @classmethod
    def empty(cls, config: TransformerConfig, batch: int,
              dtype=jnp.float32) -> "KVCache":
        shape = (batch, config.n_heads, config.max_len,
                 config.d_model // config.n_heads)
        return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))

    def write(self, keys: jax.Array, values: jax.Array, at: jax.Array) -> "KVCache":
        """This cache with `keys` and `values` (B, T, H, Dh) stored at `at` (B, T)."""
        rows = jnp.arange(keys.shape[0])[:, None]  # (B, 1)
        # Indexed [rows, :, at], the cache's slots are (B, T, H, Dh), as `keys`.
        return KVCache(self.keys.at[rows, :, at].set(keys),
                       self.values.at[rows, :, at].set(values))


class NextWordModel(nnx.Module):
    """GPT in miniature: the same Transformer read causally (a decoder), whose
    output at each position scores every word of the vocabulary as the next one."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.decoder = Transformer(config, rngs=rngs)

    @property
    def config(self) -> TransformerConfig:
        return self.decoder.config

    def __call__(self, tokens: jax.Array,
                 segments: jax.Array | None = None) -> jax.Array:
        """Scores (B, T, V): at position t, for the token at t + 1."""
        h = self.decoder(tokens, segments, causal=True)  # (B, T, D)
        return per_token(self.decoder.token_embed.attend, h)  # tied weights: (B, T, V)

    def extend(self, tokens: jax.Array, at: jax.Array,
               caches: list[KVCache]) -> tuple[jax.Array, list[KVCache]]:
        """Scores (B, T, V) for new `tokens` (B, T) at positions `at` (B, T) of one
        text per row, reading the keys and values cached for the positions before:
        the whole prompt at once, then one token per step of generation."""
        decoder = self.decoder
        L = caches[0].keys.shape[2]
        # (B, T, L): the cache up to each token's position
        allowed = jnp.arange(L)[None, None, :] <= at[:, :, None]
        x = decoder.token_embed(tokens) + decoder.position_embed(at)  # (B, T, D)
        new_caches = []
        for block, cache in zip(decoder.blocks, caches):
            x, cache = block(x, allowed, cache, at)
            new_caches.append(cache)
        return per_token(decoder.token_embed.attend, decoder.ln_final(x)), new_caches

    def empty_cache(self, batch: int) -> list[KVCache]:
        return [KVCache.empty(self.config, batch) for _ in range(self.config.n_layers)]
# --8<-- [end:next_word_model]
