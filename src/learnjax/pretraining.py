"""Pre-training: self-supervised masked prediction on the unlabeled corpus.

`pretrain` turns texts into a foundation model; `fill_mask` asks it to fill in a
hidden word; the evaluations check what it learned on sentences it never saw.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from learnjax import checkpoints, corpus
from learnjax.masking import mask_tokens
from learnjax.model import EncoderConfig, MaskedLanguageModel
from learnjax.tokenizer import MASK, MASK_ID, SPECIAL_TOKENS, Tokenizer
from learnjax.training import History, adamw, compile_in_background, compile_masked_prediction_steps, predict, train_masked_prediction


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that decides the foundation model; its hash keys the cache."""

    n_texts: int = 40_000
    corpus_seed: int = 0
    max_len: int = 32
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    steps: int = 1800
    batch_size: int = 64  # packed rows of max_len tokens, about 2.3 texts each
    learning_rate: float = 5e-3
    warmup_steps: int = 100
    # Above BERT's 15%: more predictions per step, and a small model on short
    # texts still has enough context left to learn from.
    mask_rate: float = 0.25
    seed: int = 0

    def replace(self, **changes) -> PretrainRecipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Foundation:
    """A pre-trained masked language model with its tokenizer and training history."""

    model: MaskedLanguageModel
    tokenizer: Tokenizer
    history: History
    recipe: PretrainRecipe | None = None
    seconds: float | None = None  # wall time of pre-training, corpus to trained model

    def save(self, directory: str | os.PathLike) -> Path:
        metadata = {
            "history": dataclasses.asdict(self.history),
            "recipe": self.recipe.to_dict() if self.recipe else None,
            "seconds": self.seconds,
        }
        return checkpoints.save(directory, self.model, self.tokenizer, "masked_lm", metadata)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Foundation:
        manifest, tokenizer, config = checkpoints.open_checkpoint(directory, "masked_lm")
        model = nnx.eval_shape(lambda: MaskedLanguageModel(config, rngs=nnx.Rngs(0)))  # shapes only: no initialisation
        checkpoints.restore_into(directory, model, manifest)
        meta = manifest.get("metadata", {})
        history = History(**meta["history"]) if meta.get("history") else History()
        recipe = PretrainRecipe(**meta["recipe"]) if meta.get("recipe") else None
        return cls(model, tokenizer, history, recipe, meta.get("seconds"))


def pretrain(
    recipe: PretrainRecipe = PretrainRecipe(),
    texts: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    *,
    tokenizer: Tokenizer | None = None,
    progress: bool = False,
) -> Foundation:
    """Builds a tokenizer from the texts, then trains a masked language model on them.

    `texts` defaults to the built-in corpus described by the recipe. It may be
    any iterable of texts, or a function that returns one. It is read once, as
    a stream (text from files is never held whole): the vocabulary is built
    while the texts are packed into token rows (`Tokenizer.from_texts_packed`).
    A given `tokenizer` is used as it is instead of building one from the texts.
    `progress` shows bars while reading and training, on a terminal.
    """
    started = time.perf_counter()
    if texts is None:
        texts = corpus.build_corpus(recipe.n_texts, recipe.corpus_seed)
    stream = iter(texts() if callable(texts) else texts)
    first = next(stream, None)
    if first is None:
        raise ValueError("the corpus is empty: pre-training needs at least one line of text")
    stream = itertools.chain([first], stream)
    if tokenizer is None:
        tokenizer, tokens, segments = Tokenizer.from_texts_packed(stream, recipe.max_len, progress=progress)
    else:
        tokens, segments = tokenizer.encode_packed(stream, recipe.max_len, progress=progress)
    config = EncoderConfig(len(tokenizer), recipe.max_len, recipe.d_model, recipe.n_layers, recipe.n_heads, recipe.d_ff)
    tx = adamw(recipe.learning_rate, recipe.steps, recipe.warmup_steps, 0.01)
    key = jax.random.key(recipe.seed)
    shapes = model_shapes(config, tx)
    compiling = compile_for_pretraining(config, tx, key, shapes, batch_size=recipe.batch_size, mask_rate=recipe.mask_rate)
    if tokens.max() < len(SPECIAL_TOKENS):  # max, not a comparison: no temporary the size of the corpus
        raise ValueError("the corpus has no usable tokens to mask")
    if recipe.batch_size > len(tokens):
        raise ValueError(f"batch_size={recipe.batch_size} is larger than the corpus ({len(tokens)} packed rows of {recipe.max_len} tokens)")
    compiling.result()  # both programs compiled: the next calls find them in jit's cache
    model, optimizer = create_model_and_optimizer(config, tx, key, shapes)
    history = train_masked_prediction(
        model, optimizer, tokens, segments, steps=recipe.steps, batch_size=recipe.batch_size,
        seed=recipe.seed, mask_rate=recipe.mask_rate, progress=progress,
    )
    return Foundation(model, tokenizer, history, recipe, time.perf_counter() - started)


def _build_model_and_optimizer(config: EncoderConfig, tx, key: jax.Array) -> tuple[MaskedLanguageModel, nnx.Optimizer]:
    model = MaskedLanguageModel(config, rngs=nnx.Rngs(key))
    return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


def model_shapes(config: EncoderConfig, tx) -> tuple[MaskedLanguageModel, nnx.Optimizer]:
    """The model and optimizer `create_model_and_optimizer` builds, as shapes only (nothing computed)."""
    return nnx.eval_shape(lambda: _build_model_and_optimizer(config, tx, jax.random.key(0)))


# One compiled program computes every initial value: run eagerly, each
# initializer of each new shape would compile a small program of its own. Same
# config and optimizer, same program (the key is an argument, not a constant).
# It runs once, so XLA's optimisations are not worth their compile time.
@functools.partial(jax.jit, static_argnums=(0, 1), compiler_options={"xla_backend_optimization_level": 0})
def initial_state(config: EncoderConfig, tx, key: jax.Array) -> nnx.State:
    return nnx.state(_build_model_and_optimizer(config, tx, key))


# --8<-- [start:compile_for_pretraining]
def compile_for_pretraining(config: EncoderConfig, tx, key: jax.Array, shapes=None, *, batch_size: int, mask_rate: float) -> Future:
    """Starts compiling the two programs pre-training runs first, the initial
    parameters (`create_model_and_optimizer`) and the training step, and returns
    once both are traced. XLA compiles them on a background thread while this
    one traces the second or prepares the data. The returned future is done
    when both are compiled; the calls after it find them in jit's cache (a call
    made earlier would compile its program a second time).
    """
    shapes = shapes if shapes is not None else model_shapes(config, tx)
    compile_in_background(initial_state.lower(config, tx, key))
    return compile_masked_prediction_steps(shapes, batch_size=batch_size, max_len=config.max_len, mask_rate=mask_rate)
# --8<-- [end:compile_for_pretraining]


def create_model_and_optimizer(config: EncoderConfig, tx, key: jax.Array, shapes=None) -> tuple[MaskedLanguageModel, nnx.Optimizer]:
    """A new masked language model and its AdamW optimizer (`tx`), as `pretrain` builds them.

    `shapes`, from `model_shapes(config, tx)`, saves tracing them again.
    """
    shapes = shapes if shapes is not None else model_shapes(config, tx)
    return nnx.merge(nnx.graphdef(shapes), initial_state(config, tx, key))


@dataclass(frozen=True)
class Prediction:
    word: str
    probability: float


def fill_mask(foundation: Foundation, text: str, top_k: int = 5) -> list[Prediction]:
    """The `top_k` most likely words for the single `[MASK]` in `text`.

    >>> from learnjax import foundation_model
    >>> fill_mask(foundation_model(), "Today I went to the café and drank [MASK].", top_k=1)[0].word
    'coffee'
    """
    return fill_masks(foundation, [text], top_k)[0]


def fill_masks(foundation: Foundation, texts: list[str], top_k: int = 5) -> list[list[Prediction]]:
    """`fill_mask` for many texts at once (one batched forward pass)."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    tokenizer, max_len = foundation.tokenizer, foundation.model.config.max_len
    for text in texts:
        count = text.count(MASK) if isinstance(text, str) else 0
        if count != 1:
            raise ValueError(f"text must contain exactly one {MASK}, found {count}: {text!r}")
    tokens = tokenizer.encode_batch(texts, max_len, truncate=False)
    logits = predict(foundation.model, tokens)  # (N, T, V)
    rows, cols = np.nonzero(tokens == MASK_ID)
    scores = logits[rows, cols]  # (N, V)
    scores[:, : len(SPECIAL_TOKENS)] = -np.inf  # a special token is never an answer
    probs = np.asarray(jax.nn.softmax(scores, axis=-1))
    top = np.argsort(-probs, axis=-1)[:, :top_k]
    return [[Prediction(tokenizer.vocab[j], float(p[j])) for j in row] for p, row in zip(probs, top)]


def cloze_accuracy(foundation: Foundation, items: list[corpus.Cloze] | None = None, k: int = 5) -> dict[str, float]:
    """Top-1 and top-k accuracy on held-out cloze sentences."""
    items = corpus.cloze_sentences() if items is None else items
    predictions = fill_masks(foundation, [c.text for c in items], top_k=k)
    top1 = np.mean([p[0].word == c.answer for p, c in zip(predictions, items)])
    topk = np.mean([c.answer in {x.word for x in p} for p, c in zip(predictions, items)])
    return {"top1": float(top1), f"top{k}": float(topk), "n": len(items)}


def grammar_accuracy(foundation: Foundation, probes: list[corpus.GrammarProbe] | None = None) -> dict[str, float]:
    """Share of agreement probes whose top prediction has the right verb form."""
    probes = corpus.grammar_probes() if probes is None else probes
    predictions = fill_masks(foundation, [p.text for p in probes], top_k=1)
    return {"accuracy": float(np.mean([pred[0].word in p.accepted for pred, p in zip(predictions, probes)])), "n": len(probes)}


def masked_token_scores(foundation: Foundation, texts: list[str], mask_rate: float = 0.15, seed: int = 0) -> dict[str, float]:
    """How well hidden words of `texts` (held-out text) are recovered: accuracy and
    mean cross-entropy (loss) over the masked positions."""
    tokens = foundation.tokenizer.encode_batch(texts, foundation.model.config.max_len)
    inputs, targets, weights = jax.device_get(mask_tokens(jax.random.key(seed), tokens, len(foundation.tokenizer), mask_rate))
    logits = predict(foundation.model, inputs)
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    target_log_probs = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    n = max(weights.sum(), 1.0)
    return {
        "accuracy": float(((logits.argmax(-1) == targets) * weights).sum() / n),
        "loss": float(-(target_log_probs * weights).sum() / n),
    }
