"""Pre-training: self-supervised learning on the unlabeled corpus.

`pretrain` turns texts into a foundation model by one of two objectives: masked
prediction (BERT: fill in hidden words, a model that reads) or next-word
prediction (GPT: continue the text, a model that writes). Given a model to start
from (`init`), it continues pre-training that model on new text: a domain's,
say. The recipe is `learnjax.training.recipe`'s, the model it returns
`learnjax.training.foundation`'s, and `learnjax.evaluation.language_model`
measures what it learned on sentences it never saw.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from learnjax.data import corpus, questions
from learnjax.models.lora import add_lora, merge_lora
from learnjax.models.transformer import MaskedLanguageModel, NextWordModel, TransformerConfig
from learnjax.storage import cache, checkpoints
from learnjax.text.subword import SubwordTokenizer, rereadable
from learnjax.text.tokenizer import SPECIAL_TOKENS, BaseTokenizer, Tokenizer
from learnjax.training.foundation import OBJECTIVES, Foundation, check_continues
from learnjax.training.loops import (
    adamw,
    check_learning_rate,
    compile_in_background,
    compile_masked_prediction_steps,
    compile_next_word_steps,
    new_optimizer,
    owned_copy,
    train_masked_prediction,
    train_next_word,
)
from learnjax.training.recipe import PretrainRecipe


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
    (new text: a domain's) with its tokenizer (`Foundation.continuing_recipe`
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
        check_continues(recipe, init)
        if texts is None:
            raise ValueError("continued pre-training needs the new texts to train on")
    elif lora_rank is not None:
        raise ValueError("lora_rank adapts a model being continued: give the model as init")
    if texts is None:
        texts = corpus.build_corpus(recipe.n_texts, recipe.corpus_seed)
        texts = questions.with_faq(texts, recipe.faq_share, recipe.corpus_seed) if recipe.faq_share else texts
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


def foundation_model(recipe: PretrainRecipe | None = None, *, progress: bool = True) -> Foundation:
    """The foundation model of `recipe` (default: `PretrainRecipe()`): loaded from
    the cache, or pre-trained once and saved (with a progress bar when stderr is
    a terminal and `progress` is on)."""
    recipe = recipe or PretrainRecipe()
    return cache.cached_model(recipe.to_dict(), pretrain, read=Foundation.load, make=lambda path: pretrain(recipe, progress=progress).save(path),
                              what="pre-training the foundation model", entry=foundation_of)


def foundation_of(params: dict) -> Foundation:
    """`foundation_model` of the recipe `params` describes (`PretrainRecipe.to_dict()`), quietly."""
    return foundation_model(PretrainRecipe(**params), progress=False)


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


def _new_model_and_optimizer(recipe: PretrainRecipe, vocab_size: int) -> tuple[nnx.Module, nnx.Optimizer]:
    config = TransformerConfig(vocab_size, recipe.max_len, recipe.d_model, recipe.n_layers, recipe.n_heads, recipe.d_ff)
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


def _build_model_and_optimizer(config: TransformerConfig, tx, key: jax.Array, learning_rate=1.0, objective: str = "masked"):
    model = OBJECTIVES[objective][0](config, rngs=nnx.Rngs(key))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    # A value in the optimizer's state (see `adamw`), traced here: the caller checks it.
    optimizer.opt_state.hyperparams["learning_rate"][...] = jnp.asarray(learning_rate, jnp.float32)
    return model, optimizer


def model_shapes(config: TransformerConfig, tx, objective: str = "masked") -> tuple[nnx.Module, nnx.Optimizer]:
    """The model and optimizer `create_model_and_optimizer` builds, as shapes only (nothing computed)."""
    return nnx.eval_shape(lambda: _build_model_and_optimizer(config, tx, jax.random.key(0), 1.0, objective))


# One compiled program computes every initial value: run eagerly, each
# initializer of each new shape would compile a small program of its own. Same
# config and optimizer, same program (the key is an argument, not a constant).
# It runs once, so XLA's optimisations are not worth their compile time.
@functools.partial(jax.jit, static_argnames=("config", "tx", "objective"), compiler_options={"xla_backend_optimization_level": 0})
def initial_state(config: TransformerConfig, tx, key: jax.Array, learning_rate: float, objective: str = "masked") -> nnx.State:
    return nnx.state(_build_model_and_optimizer(config, tx, key, learning_rate, objective))


# --8<-- [start:compile_for_pretraining]
def compile_for_pretraining(config: TransformerConfig, tx, key: jax.Array,
                            shapes=None, *, batch_size: int, objective: str = "masked",
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


def create_model_and_optimizer(config: TransformerConfig, tx, key: jax.Array, learning_rate: float, shapes=None,
                               objective: str = "masked") -> tuple[nnx.Module, nnx.Optimizer]:
    """A new language model for `objective` and its AdamW optimizer (`tx`, from
    `adamw`) at `learning_rate`, as `pretrain` builds them.

    `shapes`, from `model_shapes(config, tx, objective)`, saves tracing them again.
    """
    shapes = shapes if shapes is not None else model_shapes(config, tx, objective)
    return nnx.merge(nnx.graphdef(shapes), initial_state(config, tx, key, check_learning_rate(learning_rate), objective))
