"""Pre-training: self-supervised learning on the unlabeled corpus.

`pretrain` turns texts into a foundation model by one of two objectives: masked
prediction (BERT: fill in hidden words, a model that reads) or next-word
prediction (GPT: continue the text, a model that writes). Given a model to start
from (`init`), it continues pre-training that model on new text: a domain's,
say. `fill_mask` and `generate_text` ask them; the evaluations check what they
learned on sentences they never saw.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from learnjax.data import corpus
from learnjax.models.generation import Generation, Sampling, generate
from learnjax.models.lora import add_lora, merge_lora
from learnjax.models.transformer import EncoderConfig, MaskedLanguageModel, NextWordModel
from learnjax.storage import checkpoints
from learnjax.text.subword import VOCAB_SIZE, SubwordTokenizer, rereadable
from learnjax.text.tokenizer import END, MASK, MASK_ID, SPECIAL_TOKENS, TOKENIZER_KINDS, BaseTokenizer, Tokenizer
from learnjax.training.loops import (
    History,
    adamw,
    check_learning_rate,
    compile_in_background,
    compile_masked_prediction_steps,
    compile_next_word_steps,
    new_optimizer,
    owned_copy,
    predict,
    train_masked_prediction,
    train_next_word,
)
from learnjax.training.masking import mask_tokens
from learnjax.training.steps import next_word_loss, next_word_targets

# Each objective, the model it trains, and the kind its saved directory records.
OBJECTIVES = {"masked": (MaskedLanguageModel, "masked_lm"), "next-word": (NextWordModel, "next_word_lm")}


# The longest rows a new model is built for: BERT's position table. Attention's
# cost grows with the square of the row length.
MAX_POSITIONS = 512


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that decides the foundation model; its hash keys the cache.

    Every value is checked when the recipe is made: a ValueError names the
    field, e.g. `d_model=100 must be divisible by n_heads=3`.
    """

    objective: str = "masked"  # or "next-word"
    # "word": whole words, clearest to show (the built-in corpus, the pages);
    # "subword": WordPiece pieces from a vocabulary of `vocab_size`, for real text.
    tokenizer: str = "word"
    vocab_size: int = VOCAB_SIZE  # a subword vocabulary's size; at most this many words for "word"
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
    mask_rate: float = 0.25  # masked prediction only
    seed: int = 0
    faq_share: float = 0.0  # share of the corpus replaced by question-and-answer text (`corpus.with_faq`)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {self.objective!r}")
        if self.tokenizer not in TOKENIZER_KINDS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZER_KINDS)}; got {self.tokenizer!r}")
        for name in ("n_texts", "max_len", "d_model", "n_layers", "n_heads", "d_ff", "steps", "batch_size", "vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive whole number")
        for name in ("warmup_steps", "seed", "corpus_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be a whole number, 0 or more")
        if not 2 <= self.max_len <= MAX_POSITIONS:
            raise ValueError(f"max_len={self.max_len} is beyond what a model here takes: rows of 2 ([CLS] and a token) to {MAX_POSITIONS} tokens")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads} (each head reads an equal share of the width)")
        if self.vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size={self.vocab_size} must be above the {len(SPECIAL_TOKENS)} special tokens")
        for name, low, high in (("learning_rate", 0, math.inf), ("mask_rate", 0, 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
                raise ValueError(f"{name}={value!r} must be a number above {low}" + (f" and below {high}" if high < math.inf else ""))
        if not 0 <= self.faq_share < 1:
            raise ValueError(f"faq_share={self.faq_share!r} must be at least 0 and below 1")

    @classmethod
    def continuing(cls, foundation: Foundation, **changes) -> PretrainRecipe:
        """The recipe that continues pre-training `foundation` on new text: its
        objective, tokenizer and size, read from the model; the training settings
        of its own recipe (else the defaults); then `changes`. A change to what
        the model fixes is refused (continued pre-training keeps the model), and
        `max_len` may be shorter than the model's position table, not longer."""
        base = foundation.recipe or cls()
        recipe = base.replace(**_fixed_by(foundation), vocab_size=max(len(foundation.tokenizer), base.vocab_size),
                              max_len=foundation.model.config.max_len)
        recipe = recipe.replace(**changes)
        _check_continues(recipe, foundation)
        return recipe

    def replace(self, **changes) -> PretrainRecipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --8<-- [start:corpus_recipe]
CHARS_PER_TOKEN = 4  # mail or prose in a subword vocabulary of thousands of tokens: about 4 characters a token
CORPUS_PASSES = 3  # each token of the corpus read about this many times, at a different masking each time
ROW_LENGTHS = (32, 64, 128)  # attention's cost grows with the square of a row


@dataclass(frozen=True)
class CorpusShape:
    """What `corpus_recipe` reads of a corpus: how many texts, how long."""

    texts: int
    characters: int
    median_characters: int

    @classmethod
    def measure(cls, texts: Iterable[str]) -> CorpusShape:
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64)
        if not lengths.size:
            raise ValueError("the corpus is empty: pre-training needs at least one line of text")
        return cls(int(lengths.size), int(lengths.sum()), int(np.median(lengths)))


def corpus_recipe(shape: CorpusShape, **given) -> tuple[PretrainRecipe, dict[str, str]]:
    """A recipe for pre-training on one's own corpus: the values `given` as
    they are, the row length and the steps chosen from the corpus's shape, and
    why, one line per chosen value.

    Rows: a quarter of the median text's tokens, to the nearest of
    `ROW_LENGTHS`. A classifier reads every window of a longer text
    (`FinetuneSettings.windows`), so a row need not hold a whole text: it
    needs enough context around each hidden word, and a longer row costs more
    per token. Steps: `CORPUS_PASSES` readings of the corpus's tokens, at
    least 300 steps: a small corpus is read more often.
    """
    chosen, why = {"tokenizer": "subword", **given}, {}
    tokens = shape.characters / CHARS_PER_TOKEN
    median_tokens = shape.median_characters / CHARS_PER_TOKEN
    if "max_len" not in given:
        chosen["max_len"] = min(ROW_LENGTHS, key=lambda row: abs(math.log2(row) - math.log2(max(median_tokens / 4, 1))))
        why["max_len"] = f"rows of {chosen['max_len']} tokens: the median text is about {median_tokens:.0f} tokens, read in windows"
    if "steps" not in given:
        recipe = PretrainRecipe(**chosen)
        chosen["steps"] = max(300, round(CORPUS_PASSES * tokens / (recipe.batch_size * recipe.max_len)))
        why["steps"] = (f"{chosen['steps']} steps of {recipe.batch_size} rows: about {CORPUS_PASSES} readings of the corpus's "
                        f"{tokens / 1e6:.2f} million tokens" + (" (at least 300)" if chosen["steps"] == 300 else ""))
    return PretrainRecipe(**chosen), why
# --8<-- [end:corpus_recipe]


NEXT_WORD_RECIPE = PretrainRecipe(objective="next-word")
"""The generative foundation model: the same corpus, model size and budget, the next-word objective."""

MIXED_RECIPE = NEXT_WORD_RECIPE.replace(faq_share=0.1)
"""The generative foundation model of a corpus in which a tenth of the texts are
questions and answers about the world (not about the entities held out from
instruction tuning)."""


@dataclass
class Foundation:
    """A pre-trained language model (masked or next-word) with its tokenizer and training history."""

    model: MaskedLanguageModel | NextWordModel
    tokenizer: BaseTokenizer
    history: History
    recipe: PretrainRecipe | None = None
    seconds: float | None = None  # wall time of pre-training, corpus to trained model

    @property
    def objective(self) -> str:
        return next(name for name, (model_class, _) in OBJECTIVES.items() if isinstance(self.model, model_class))

    def save(self, directory: str | os.PathLike) -> Path:
        metadata = {
            "history": dataclasses.asdict(self.history),
            "recipe": self.recipe.to_dict() if self.recipe else None,
            "seconds": self.seconds,
        }
        return checkpoints.save(directory, self.model, self.tokenizer, OBJECTIVES[self.objective][1], metadata)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Foundation:
        kinds = {kind: model_class for model_class, kind in OBJECTIVES.values()}
        manifest, tokenizer, config = checkpoints.open_checkpoint(directory, tuple(kinds))
        model_class = kinds[manifest["kind"]]
        model = nnx.eval_shape(lambda: model_class(config, rngs=nnx.Rngs(0)))  # shapes only: no initialisation
        checkpoints.restore_into(directory, model, manifest)
        with checkpoints.reading_metadata(directory):
            meta = manifest.get("metadata", {})
            history = History(**meta["history"]) if meta.get("history") else History()
            recipe = PretrainRecipe(**meta["recipe"]) if meta.get("recipe") else None
            return cls(model, tokenizer, history, recipe, meta.get("seconds"))


def pretrain(
    recipe: PretrainRecipe = PretrainRecipe(),
    texts: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    *,
    tokenizer: BaseTokenizer | None = None,
    init: Foundation | None = None,
    lora_rank: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = False,
    mesh=None,
    fsdp: bool = False,
) -> Foundation:
    """Builds a tokenizer from the texts, then trains a language model on them by
    the recipe's objective: masked prediction or next-word prediction; over the
    devices of `mesh` if given (`learnjax.training.sharding`), its state split over them
    too with `fsdp`.

    `texts` defaults to the built-in corpus described by the recipe. It may be
    any iterable of texts, or a function that returns one. Every text is read
    whole: one longer than a row becomes consecutive windows (`encode_packed`).
    The recipe's `tokenizer` is "word" (the vocabulary is built while the texts
    are packed into rows: a stream is read once, text from files is never held
    whole) or "subword" (`SubwordTokenizer`, of `vocab_size` tokens: the texts
    are read three times, so a stream that cannot be read again is kept in
    memory). A given `tokenizer` is used as it is instead of building one.

    With `init`, a foundation model, pre-training continues from it on `texts`
    (new text: a domain's) with its tokenizer (`PretrainRecipe.continuing`
    makes the recipe). A word-level vocabulary gains the new words seen at
    least `NEW_WORD_MIN_COUNT` times, after the words it had, whose ids stay
    (`with_vocabulary` gives them rows); a subword one reads new words as
    pieces. With `lora_rank`, only LoRA adapters of that rank and the token
    embeddings train (`lora_trainable`); they are merged into the weights at the end.

    With `checkpoint_dir` and `checkpoint_every`, a checkpoint of the whole
    training state is written there every so many steps; `resume` continues
    from the last one, refusing other settings, and ends exactly as the run
    would have without the interruption (`checkpoints.TrainingCheckpoints`).
    `progress` shows bars while reading and training, on a terminal.
    """
    started = time.perf_counter()
    if init is not None:
        _check_continues(recipe, init)
        if texts is None:
            raise ValueError("continued pre-training needs the new texts to train on")
    elif lora_rank is not None:
        raise ValueError("lora_rank adapts a model being continued: give the model as init")
    if texts is None:
        texts = corpus.build_corpus(recipe.n_texts, recipe.corpus_seed, recipe.faq_share)
    kind = OBJECTIVES[recipe.objective][1]
    if checkpoint_dir is None and (resume or checkpoint_every):
        raise ValueError("checkpoint_every and resume need a checkpoint_dir")
    saved = checkpoints.TrainingCheckpoints(checkpoint_dir, kind) if checkpoint_dir is not None else None
    if resume:
        tokenizer = saved.tokenizer()  # the interrupted run's, whatever it learned from the texts
    tokenizer, tokens, segments = corpus_rows(recipe, texts, tokenizer, init, progress)
    if tokens.max() < len(SPECIAL_TOKENS):  # max, not a comparison: no temporary the size of the corpus
        raise ValueError("the corpus has no usable tokens to learn from")
    if recipe.batch_size > len(tokens):
        raise ValueError(f"batch_size={recipe.batch_size} is larger than the corpus ({len(tokens)} packed rows of {recipe.max_len} tokens)")
    if init is None:
        model, optimizer = _new_model_and_optimizer(recipe, len(tokenizer))
    else:
        model, optimizer = _continued_model_and_optimizer(recipe, init, len(tokenizer), lora_rank)
    checkpointing = None
    if saved is not None:
        settings = {**recipe.to_dict(), "corpus": checkpoints.data_fingerprint(tokens, segments), "lora_rank": lora_rank,
                    "init": checkpoints.params_fingerprint(init.model) if init is not None else None}
        checkpointing = saved.checkpointing(model, optimizer, tokenizer, settings, every=checkpoint_every, resume=resume)
    train = train_masked_prediction if recipe.objective == "masked" else train_next_word
    options = {"mask_rate": recipe.mask_rate} if recipe.objective == "masked" else {}
    history = train(model, optimizer, tokens, segments, steps=recipe.steps, batch_size=recipe.batch_size,
                    seed=recipe.seed, progress=progress, mesh=mesh, fsdp=fsdp, checkpointing=checkpointing, **options)
    if lora_rank is not None:
        merge_lora(model)
    return Foundation(model, tokenizer, history, recipe, time.perf_counter() - started)


NEW_WORD_MIN_COUNT = 2  # a word seen once in new text is as likely a typo as a term


def corpus_rows(recipe: PretrainRecipe, texts, tokenizer: BaseTokenizer | None = None, init: Foundation | None = None,
                progress: bool = False) -> tuple[BaseTokenizer, np.ndarray, np.ndarray]:
    """What `pretrain` trains on: the tokenizer (given; the one `init` reads
    with, its vocabulary extended; or built from the texts by the recipe) and
    the texts packed into rows of `recipe.max_len` (`encode_packed`)."""
    end = recipe.objective == "next-word"
    if tokenizer is None and (init is not None or recipe.tokenizer == "subword"):
        read = rereadable(texts)  # read more than once
        _checked_stream(read())
        if init is None:
            tokenizer = SubwordTokenizer.train(read, recipe.vocab_size)
        elif isinstance(init.tokenizer, Tokenizer):
            tokenizer = init.tokenizer.extended(init.tokenizer.unknown_words(read(), NEW_WORD_MIN_COUNT))
        else:
            tokenizer = init.tokenizer
        texts = read
    stream = _checked_stream(texts)
    if tokenizer is None:
        return Tokenizer.from_texts_packed(stream, recipe.max_len, max_size=recipe.vocab_size, end=end, progress=progress)
    return (tokenizer, *tokenizer.encode_packed(stream, recipe.max_len, end=end, progress=progress))


def _checked_stream(texts) -> Iterable[str]:
    """An iterator over the texts (a function's, if `texts` is one), refused if there are none."""
    stream = iter(texts() if callable(texts) else texts)
    first = next(stream, None)
    if first is None:
        raise ValueError("the corpus is empty: pre-training needs at least one line of text")
    return itertools.chain([first], stream)


def _fixed_by(foundation: Foundation) -> dict:
    """What a model fixes of the recipes that continue it: its objective, tokenizer and size."""
    config = foundation.model.config
    return {"objective": foundation.objective, "tokenizer": foundation.tokenizer.kind, "d_model": config.d_model,
            "n_layers": config.n_layers, "n_heads": config.n_heads, "d_ff": config.d_ff}


def _check_continues(recipe: PretrainRecipe, init: Foundation) -> None:
    """Refuses a recipe that does not fit the model it continues (`PretrainRecipe.continuing`)."""
    config = init.model.config
    for name, value in _fixed_by(init).items():
        if getattr(recipe, name) != value:
            raise ValueError(f"{name}={getattr(recipe, name)!r} differs from the model being continued ({name}={value!r}): "
                             "continued pre-training keeps the model's objective, tokenizer and size")
    if recipe.max_len > config.max_len:
        raise ValueError(f"max_len={recipe.max_len} is beyond the position table of the model being continued ({config.max_len} positions)")


def _new_model_and_optimizer(recipe: PretrainRecipe, vocab_size: int) -> tuple[nnx.Module, nnx.Optimizer]:
    config = EncoderConfig(vocab_size, recipe.max_len, recipe.d_model, recipe.n_layers, recipe.n_heads, recipe.d_ff)
    tx, key, objective = adamw(recipe.steps, recipe.warmup_steps), jax.random.key(recipe.seed), recipe.objective
    shapes = model_shapes(config, tx, objective)
    compiling = compile_for_pretraining(config, tx, key, shapes, batch_size=recipe.batch_size, objective=objective, mask_rate=recipe.mask_rate)
    compiling.result()  # both programs compiled: the next calls find them in jit's cache
    return create_model_and_optimizer(config, tx, key, recipe.learning_rate, shapes, objective)


def lora_trainable(path: tuple, value) -> bool:
    """The nnx filter of what continued pre-training with LoRA trains: the
    adapters, and the token embeddings with the output bias, without which new
    words could not be learned (adapters change how the model combines tokens,
    not which tokens it has)."""
    return isinstance(value, nnx.LoRAParam) or (isinstance(value, nnx.Param) and ("token_embed" in path or path == ("bias",)))


def _continued_model_and_optimizer(recipe: PretrainRecipe, init: Foundation, vocab_size: int,
                                   lora_rank: int | None) -> tuple[nnx.Module, nnx.Optimizer]:
    model = with_vocabulary(owned_copy(init.model), vocab_size, seed=recipe.seed)  # a copy: the steps reuse its buffers
    trainable = nnx.Param
    if lora_rank is not None:
        add_lora(model, lora_rank, seed=recipe.seed)
        trainable = lora_trainable
    return model, new_optimizer(model, adamw(recipe.steps, recipe.warmup_steps), recipe.learning_rate, trainable)


def with_vocabulary(model: MaskedLanguageModel | NextWordModel, vocab_size: int, seed: int = 0) -> MaskedLanguageModel | NextWordModel:
    """`model` with room for `vocab_size` tokens: its rows for the tokens it had
    stay as they are, under the same ids; a new token's embedding is drawn from
    the old ones' distribution (their mean and spread in each dimension: it
    looks like a word, and new words differ from each other from the start),
    its output bias starts at 0."""
    config = model.config
    if vocab_size == config.vocab_size:
        return model
    if vocab_size < config.vocab_size:
        raise ValueError(f"vocab_size={vocab_size} is below the model's {config.vocab_size}: rows are only added")
    grown = nnx.eval_shape(lambda: type(model)(dataclasses.replace(config, vocab_size=vocab_size), rngs=nnx.Rngs(0)))
    values = nnx.to_pure_dict(nnx.state(model))
    table = values["encoder" if "encoder" in values else "decoder"]["token_embed"]
    old = table["embedding"]
    noise = jax.random.normal(jax.random.key(seed), (vocab_size - config.vocab_size, config.d_model), old.dtype)
    table["embedding"] = jnp.concatenate([old, old.mean(axis=0) + old.std(axis=0) * noise])
    if "bias" in values:
        values["bias"] = jnp.concatenate([values["bias"], jnp.zeros(vocab_size - config.vocab_size, values["bias"].dtype)])
    state = nnx.state(grown)
    nnx.replace_by_pure_dict(state, values)
    nnx.update(grown, state)
    return grown


def _build_model_and_optimizer(config: EncoderConfig, tx, key: jax.Array, learning_rate=1.0, objective: str = "masked"):
    model = OBJECTIVES[objective][0](config, rngs=nnx.Rngs(key))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    # A value in the optimizer's state (see `adamw`), traced here: the caller checks it.
    optimizer.opt_state.hyperparams["learning_rate"][...] = jnp.asarray(learning_rate, jnp.float32)
    return model, optimizer


def model_shapes(config: EncoderConfig, tx, objective: str = "masked") -> tuple[nnx.Module, nnx.Optimizer]:
    """The model and optimizer `create_model_and_optimizer` builds, as shapes only (nothing computed)."""
    return nnx.eval_shape(lambda: _build_model_and_optimizer(config, tx, jax.random.key(0), 1.0, objective))


# One compiled program computes every initial value: run eagerly, each
# initializer of each new shape would compile a small program of its own. Same
# config and optimizer, same program (the key is an argument, not a constant).
# It runs once, so XLA's optimisations are not worth their compile time.
@functools.partial(jax.jit, static_argnames=("config", "tx", "objective"), compiler_options={"xla_backend_optimization_level": 0})
def initial_state(config: EncoderConfig, tx, key: jax.Array, learning_rate: float, objective: str = "masked") -> nnx.State:
    return nnx.state(_build_model_and_optimizer(config, tx, key, learning_rate, objective))


# --8<-- [start:compile_for_pretraining]
def compile_for_pretraining(config: EncoderConfig, tx, key: jax.Array, shapes=None, *,
                            batch_size: int, objective: str = "masked",
                            mask_rate: float = 0.15) -> Future:
    """Starts compiling the two programs pre-training runs first, the initial
    parameters (`create_model_and_optimizer`) and the training steps, and returns
    once both are traced. XLA compiles them on a background thread while this
    one traces the second or prepares the data. The returned future is done
    when both are compiled; the calls after it find them in jit's cache (a call
    made earlier would compile its program a second time).
    """
    shapes = shapes if shapes is not None else model_shapes(config, tx, objective)
    # The rate is a value: any one traces the same program.
    compile_in_background(initial_state.lower(config, tx, key, 1.0, objective))
    if objective == "next-word":
        return compile_next_word_steps(shapes, batch_size=batch_size,
                                       max_len=config.max_len)
    return compile_masked_prediction_steps(shapes, batch_size=batch_size,
                                           max_len=config.max_len, mask_rate=mask_rate)
# --8<-- [end:compile_for_pretraining]


def create_model_and_optimizer(config: EncoderConfig, tx, key: jax.Array, learning_rate: float, shapes=None,
                               objective: str = "masked") -> tuple[nnx.Module, nnx.Optimizer]:
    """A new language model for `objective` and its AdamW optimizer (`tx`, from
    `adamw`) at `learning_rate`, as `pretrain` builds them.

    `shapes`, from `model_shapes(config, tx, objective)`, saves tracing them again.
    """
    shapes = shapes if shapes is not None else model_shapes(config, tx, objective)
    return nnx.merge(nnx.graphdef(shapes), initial_state(config, tx, key, check_learning_rate(learning_rate), objective))


def _require(foundation: Foundation, objective: str, why: str) -> None:
    if foundation.objective != objective:
        raise ValueError(f"this is a {foundation.objective} model, not a {objective} model: only a {objective} model {why}")


def generate_text(foundation: Foundation, prompts: list[str], *, max_new_tokens: int = 16, sampling: Sampling = Sampling(),
                  seed: int = 0) -> list[Generation]:
    """Continues each prompt with a next-word foundation model (`learnjax.models.generation.generate`).

    >>> from learnjax import foundation_model
    >>> generate_text(foundation_model(NEXT_WORD_RECIPE), ["Today I went to the café and drank"])[0].text
    'coffee.'
    """
    _require(foundation, "next-word", "writes text; a masked model fills in a [MASK] (fill-mask)")
    tokenizer = foundation.tokenizer
    generated = generate(foundation.model, tokenizer, prompts, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed)
    if tokenizer.kind == "word":
        return generated
    # `generate` joins tokens as words; subword pieces join into words as their tokenizer writes them.
    return [dataclasses.replace(g, text=tokenizer.decode(tokenizer.ids[t] for t in g.tokens if t != END)) for g in generated]


def next_word_accuracy(foundation: Foundation, probes: list[corpus.NextWordProbe] | None = None) -> dict:
    """Share of held-out prompts whose greedy next word is the answer."""
    probes = corpus.next_word_probes() if probes is None else probes
    generated = generate_text(foundation, [p.prompt for p in probes], max_new_tokens=1)
    right = [g.tokens[:1] == [p.answer] for g, p in zip(generated, probes)]
    return {"accuracy": float(np.mean(right)), "n": len(probes), "answers": [g.tokens[0] for g in generated]}


@nnx.jit
def _next_word_nll(model: NextWordModel, tokens: jax.Array, segments: jax.Array) -> tuple[jax.Array, jax.Array]:
    loss, _ = next_word_loss(model, tokens, segments, segments > 0)
    _, weights = next_word_targets(tokens, segments, segments > 0)
    return loss * weights.sum(), weights.sum()


def perplexity(foundation: Foundation, texts: list[str], batch_size: int = 256) -> float:
    """Per-token perplexity of a next-word model on `texts`: exp of the mean
    negative log-probability of each word and of each text's `[END]`, the
    tokens `ngram.KneserNeyTrigram.perplexity` scores too."""
    _require(foundation, "next-word", "scores continuations")
    tokens, segments = foundation.tokenizer.encode_packed(texts, foundation.model.config.max_len, end=True)
    n = len(tokens)
    pad = -n % batch_size if n > batch_size else 0
    tokens, segments = (np.concatenate([a, np.zeros((pad, a.shape[1]), a.dtype)]) for a in (tokens, segments))
    size = min(batch_size, len(tokens))
    sums = jax.device_get([_next_word_nll(foundation.model, tokens[i : i + size], segments[i : i + size]) for i in range(0, len(tokens), size)])
    return float(np.exp(sum(total for total, _ in sums) / sum(count for _, count in sums)))


@dataclass(frozen=True)
class Prediction:
    """One token for a `[MASK]`. With a subword tokenizer a token may be a whole
    word or a piece of one: `piece` marks a piece that continues the word before
    it (`##ing`); one that starts a word may still need more pieces after it."""

    word: str
    probability: float
    piece: bool = False


def fill_mask(foundation: Foundation, text: str, top_k: int = 5) -> list[Prediction]:
    """The `top_k` most likely words for the single `[MASK]` in `text`.

    >>> from learnjax import foundation_model
    >>> fill_mask(foundation_model(), "Today I went to the café and drank [MASK].", top_k=1)[0].word
    'coffee'
    """
    return fill_masks(foundation, [text], top_k)[0]


def fill_masks(foundation: Foundation, texts: list[str], top_k: int = 5) -> list[list[Prediction]]:
    """`fill_mask` for many texts at once (one batched forward pass): one list
    of predictions per text, in order. `top_k` beyond the vocabulary's words
    gives every word (a special token is never an answer)."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    _require(foundation, "masked", "fills in a [MASK]; a next-word model continues a text (generate)")
    tokenizer, max_len = foundation.tokenizer, foundation.model.config.max_len
    # The one place where `[MASK]` written in a text is the special token; the
    # tokenizer reads `[mask]` as it too, so masks are counted as the model sees them.
    tokens = tokenizer.encode_batch(texts, max_len, truncate=False, masks=True)
    for text, count in zip(texts, (tokens == MASK_ID).sum(axis=1)):
        if count != 1:
            raise ValueError(f"text must contain exactly one {MASK}, found {count}: {text!r}")
    logits = predict(foundation.model, tokens)  # (N, T, V)
    scores = logits[np.arange(len(tokens)), (tokens == MASK_ID).argmax(axis=1)]  # (N, V): each text's mask
    scores[:, : len(SPECIAL_TOKENS)] = -np.inf
    probs = np.asarray(jax.nn.softmax(scores, axis=-1))
    top = np.argsort(-probs, axis=-1)[:, : min(top_k, len(tokenizer) - len(SPECIAL_TOKENS))]
    return [[Prediction(tokenizer.vocab[j], float(p[j]), tokenizer.continues_word(tokenizer.vocab[j])) for j in row] for p, row in zip(probs, top)]


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
