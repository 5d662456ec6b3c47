"""Writing text with a next-word model: one compiled program per batch size.

A language model writes one token at a time: score the next token, pick one,
append it, repeat. Done naively, every step reads the whole text again. With a
KV cache, each step reads only the newest token: the keys and values of the
earlier ones are kept from the steps before (`learnjax.models.transformer.KVCache`). The
whole loop, prompt included, runs as one XLA program (a `jax.lax.while_loop`
over fixed shapes), so prompts of any length, and any sampling settings, reuse
the program that compiled first.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from learnjax.models.batching import batch_bucket
from learnjax.text.tokenizer import CLS_ID, END_ID, PAD_ID, SPECIAL_TOKENS, Tokenizer

# A model writes words and ends its text; it never writes padding, [UNK],
# [MASK], [CLS] or a chat turn.
NEVER_WRITTEN = tuple(i for i in range(len(SPECIAL_TOKENS)) if i != END_ID)


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked from the model's scores.

    `temperature` 0 is greedy decoding (always the most likely token); above 0
    it samples, flatter as it grows. `top_k` (0: no limit) keeps only the k most
    likely tokens, `top_p` (1: no limit) the fewest whose probabilities add up
    to p (nucleus sampling).
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature < float("inf"):
            raise ValueError(f"temperature must be 0 (greedy) or positive, got {self.temperature!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be 0 (no limit) or a positive int, got {self.top_k!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")


# --8<-- [start:sample_next]
def sample_next(key: jax.Array, logits: jax.Array, temperature, top_k,
                top_p) -> jax.Array:
    """The next token of each row (B,) from its scores (B, V). The settings are
    values, not static arguments: changing them compiles nothing. Each call
    runs only the branch its settings need (`jax.lax.cond`): greedy decoding
    never samples, and plain sampling never sorts the vocabulary."""
    logits = logits.at[:, jnp.array(NEVER_WRITTEN)].set(-jnp.inf)

    def keep_best(scaled):  # top-k and top-p: only the best-ranked tokens stay
        ranked = jnp.sort(scaled, axis=-1)[:, ::-1]  # (B, V), best first
        rank = jnp.arange(scaled.shape[-1])
        probs = jax.nn.softmax(ranked, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # of the better-ranked tokens
        # The best token is always kept.
        keep = ((top_k <= 0) | (rank < top_k)) & (before < top_p)
        threshold = jnp.min(jnp.where(keep, ranked, jnp.inf), axis=-1,
                            keepdims=True)  # (B, 1)
        return jnp.where(scaled >= threshold, scaled, -jnp.inf)

    def sample(logits):
        scaled = logits / temperature
        scaled = jax.lax.cond((top_k > 0) | (top_p < 1), keep_best, lambda s: s, scaled)
        return jax.random.categorical(key, scaled, axis=-1).astype(jnp.int32)

    return jax.lax.cond(temperature > 0, sample,
                        lambda s: s.argmax(-1).astype(jnp.int32), logits)
# --8<-- [end:sample_next]


# Rows per call when decoding greedily a batch larger than this (`continue_ids`).
GREEDY_CHUNK = 64


# --8<-- [start:generate_tokens]
# Prompt columns read into the cache per step of the prefill loop: the cost of reading
# a prompt follows its length, not the length of the context.
PREFILL_CHUNK = 16


def prefill(model, prompts: jax.Array, lengths: jax.Array):
    """Reads the prompts into an empty cache a chunk of columns at a time, only as
    many chunks as the longest prompt needs (a loop of fixed shapes, so any prompt
    length runs the same program); returns the scores of the token after each
    prompt (B, V) and the caches."""
    B, L = prompts.shape
    chunk = next(c for c in (PREFILL_CHUNK, 8, 4, 2, 1) if L % c == 0)
    rows = jnp.arange(B)

    def read(c, carry):
        scores, caches = carry
        start = c * chunk
        at = jnp.broadcast_to(start + jnp.arange(chunk), (B, chunk))
        logits, caches = model.extend(
            jax.lax.dynamic_slice_in_dim(prompts, start, chunk, axis=1), at, caches)
        last = lengths - 1 - start  # where each prompt's last token is in this chunk
        inside = (last >= 0) & (last < chunk)
        return jnp.where(inside[:, None], logits[rows, jnp.clip(last, 0, chunk - 1)],
                         scores), caches

    scores = jnp.zeros((B, model.config.vocab_size), jnp.float32)
    return jax.lax.fori_loop(0, (lengths.max() + chunk - 1) // chunk, read,
                             (scores, model.empty_cache(B)))


@functools.partial(jax.jit, static_argnames=("graphdef", "use_cache", "stop_at_end"))
def generate_tokens(state, prompts, lengths, key, max_new_tokens, temperature, top_k,
                    top_p, *, graphdef, use_cache=True, stop_at_end=True):
    """Continues each prompt, a row of `prompts` (B, L) whose first `lengths[b]`
    tokens are real, by up to `max_new_tokens` tokens, stopping a row at `[END]`.

    Returns the new tokens (B, L), `[PAD]` after each row's end. With
    `use_cache=False` every step reads the whole text again, and with
    `stop_at_end=False` every row gets all its tokens (both for comparisons).
    """
    model = nnx.merge(graphdef, state)
    B, L = prompts.shape
    rows = jnp.arange(B)
    if use_cache:  # read every prompt once, keeping each layer's keys and values
        scores, caches = prefill(model, prompts, lengths)
    else:
        # (B, V): the next token after each prompt
        scores, caches = model(prompts)[rows, lengths - 1], None

    def step(carry):
        i, key, scores, caches, text, new, done = carry
        key, draw = jax.random.split(key)
        token = jnp.where(done, PAD_ID,
                          sample_next(draw, scores, temperature, top_k, top_p))  # (B,)
        new = new.at[:, i].set(token)
        text = text.at[rows, lengths + i].set(jnp.where(done, PAD_ID, token))
        done = done | ((token == END_ID) & stop_at_end)
        at = jnp.minimum(lengths + i, L - 1)[:, None]  # (B, 1): where the token goes
        if use_cache:  # read only the new token
            logits, caches = model.extend(token[:, None], at, caches)
            scores = logits[:, 0]
        else:  # read the whole text again
            scores = model(text)[rows, at[:, 0]]
        return i + 1, key, scores, caches, text, new, done

    def going(carry):
        i, *_, done = carry
        return (i < max_new_tokens) & ~done.all()

    new = jnp.full((B, L), PAD_ID, jnp.int32)
    carry = (jnp.int32(0), key, scores, caches, prompts, new, jnp.zeros(B, bool))
    return jax.lax.while_loop(going, step, carry)[5]
# --8<-- [end:generate_tokens]


@dataclass(frozen=True)
class Generation:
    prompt: str
    text: str  # the continuation, without the end token
    tokens: list[str]  # the continuation's tokens, `[END]` included if the model ended the text
    ended: bool  # the model wrote `[END]` (rather than running out of new tokens)


def join_words(words: list[str]) -> str:
    """Words as text: a space between words, none before punctuation."""
    return re.sub(r" ([.,!?;:])", r"\1", " ".join(words))


def encode_prompts(tokenizer: Tokenizer, prompts: list[str]) -> list[list[int]]:
    """Each prompt's tokens as a text's start: `[CLS]` first, no `[END]`."""
    ids = []
    for prompt in prompts:
        words = tokenizer.encode(prompt)
        if not words:
            raise ValueError(f"prompt {prompt!r} is empty: give the model some words to continue")
        ids.append([CLS_ID, *words])
    return ids


def prompt_rows(prompt_ids: list[list[int]], max_len: int, max_new_tokens: int, names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Prompts as rows of `max_len` tokens and their lengths, each checked: room
    left for `max_new_tokens`. `names` are the prompts as errors quote them."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 1 <= max_new_tokens < max_len - 1:
        raise ValueError(f"max_new_tokens must be between 1 and {max_len - 2} (the model reads {max_len} tokens), got {max_new_tokens!r}")
    if not prompt_ids:
        raise ValueError("no prompts to continue")
    rows = np.full((len(prompt_ids), max_len), PAD_ID, np.int32)
    lengths = np.zeros(len(prompt_ids), np.int32)
    for i, ids in enumerate(prompt_ids):
        if len(ids) + max_new_tokens > max_len:
            name = (names[i] if names else f"prompt {i + 1}")[:60]
            raise ValueError(f"prompt {name!r} has {len(ids) - 1} tokens; with {max_new_tokens} new ones it "
                             f"exceeds the model's {max_len}-token context (at most {max_len - 1 - max_new_tokens} tokens)")
        rows[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return rows, lengths


def generate(
    model: nnx.Module,
    tokenizer: Tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int = 16,
    sampling: Sampling = Sampling(),
    seed: int = 0,
    use_cache: bool = True,
) -> list[Generation]:
    """Continues each prompt with `model` (a `NextWordModel`): greedy by default,
    sampled with `sampling`; the same `seed` gives the same text."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings; wrap a single prompt in a list")
    continuations = continue_ids(model, encode_prompts(tokenizer, prompts), max_new_tokens=max_new_tokens, sampling=sampling,
                                 seed=seed, use_cache=use_cache, names=prompts)
    results = []
    for prompt, ids in zip(prompts, continuations):
        text_ids = ids[: ids.index(END_ID)] if END_ID in ids else ids
        results.append(Generation(prompt, join_words([tokenizer.vocab[i] for i in text_ids]), [tokenizer.vocab[i] for i in ids], END_ID in ids))
    return results


def continue_ids(
    model: nnx.Module,
    prompt_ids: list[list[int]],
    *,
    max_new_tokens: int = 16,
    sampling: Sampling = Sampling(),
    seed: int = 0,
    use_cache: bool = True,
    names: list[str] | None = None,
) -> list[list[int]]:
    """`generate` for prompts given as token ids (a chat template's, say): the
    new token ids of each, up to and with `[END]` if the model wrote it."""
    rows, lengths = prompt_rows(prompt_ids, model.config.max_len, max_new_tokens, names)
    n = len(prompt_ids)
    # Greedy rows do not depend on each other or on the key, so a large batch runs
    # in chunks of one size: every evaluation set shares one compiled program. A
    # sampled batch stays whole: its random draws are the batch's.
    chunk = GREEDY_CHUNK if sampling.temperature == 0 and n > GREEDY_CHUNK else batch_bucket(n)
    size = -(-n // chunk) * chunk
    rows = np.concatenate([rows, np.repeat(rows[:1], size - n, axis=0)])
    lengths = np.concatenate([lengths, np.repeat(lengths[:1], size - n)])
    graphdef, state = nnx.split(model)
    # Arrays of fixed dtypes: any prompt length, number of new tokens or setting runs one program.
    settings = (np.int32(max_new_tokens), np.float32(sampling.temperature), np.int32(sampling.top_k), np.float32(sampling.top_p))
    new = np.concatenate([
        np.asarray(generate_tokens(state, rows[at : at + chunk], lengths[at : at + chunk], jax.random.key(seed), *settings,
                                   graphdef=graphdef, use_cache=use_cache))
        for at in range(0, size, chunk)
    ])
    return [[int(t) for t in row if t != PAD_ID] for row in new[:n]]
