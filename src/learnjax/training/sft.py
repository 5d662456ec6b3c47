"""Supervised fine-tuning on prompt/response pairs: the training, without the sampler.

`instruction_tuning` builds the assistant that answers on top of this; the
training lives apart so that what it trains is keyed (`learnjax.storage.cache`)
by the training code alone: a change to the sampler re-scores the trained
models, it does not train them again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flax import nnx

from learnjax.data.questions import Example, chat_rows
from learnjax.models.lora import add_lora, merge_lora
from learnjax.models.transformer import NextWordModel
from learnjax.storage import checkpoints
from learnjax.storage.progress import History
from learnjax.text.tokenizer import BaseTokenizer
from learnjax.training.foundation import Foundation
from learnjax.training.loops import adamw, new_optimizer, owned_copy, train_next_word
from learnjax.training.recipe import MIXED_RECIPE

MODES = ("full", "lora", "scratch")

# The foundation an assistant starts from by default: the corpus with question-
# and-answer text in it (`questions.with_faq`), from which fine-tuning can surface
# what pre-training stored (measured by `experiments.instruction_tuning`).
ASSISTANT_RECIPE = MIXED_RECIPE


@dataclass(frozen=True)
class SFTSettings:
    """The training budget, the same for every mode."""

    steps: int = 300  # 256 examples: about 19 passes; fewer steps leave the dev split unable to tell a too-high rate
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 12
    weight_decay: float = 0.01
    lora_rank: int = 8
    lora_alpha: float = 16.0


# --8<-- [start:build_assistant]
def build_assistant(foundation: Foundation, mode: str, settings: SFTSettings = SFTSettings(), seed: int = 0):
    """The model to instruction-tune for `mode`, and the filter of what to train."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "scratch":
        return NextWordModel(foundation.model.config, rngs=nnx.Rngs(seed)), nnx.Param
    model = owned_copy(foundation.model)  # a copy: the foundation stays as it is
    if mode == "lora":
        return add_lora(model, settings.lora_rank, settings.lora_alpha, seed), nnx.LoRAParam
    return model, nnx.Param


# --8<-- [end:build_assistant]


# Rows are cut to a multiple of this width: few widths, so few compiled programs.
ROW_WIDTH_STEP = 4


def without_padding_columns(tokens: np.ndarray, segments: np.ndarray, learn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows (N, T) less the columns after the longest text (kept to a multiple
    of `ROW_WIDTH_STEP`). A question and its answer fill about half of a row;
    the columns after them are padding, which no real token attends to (the
    mask is causal and the padding comes last) and no loss counts: cutting
    them leaves the computation the same but for the order of floating-point
    sums, and saves their share of every step's compute."""
    used = int((segments > 0).any(axis=0).nonzero()[0].max(initial=-1)) + 1
    width = min(tokens.shape[1], -(-max(used, 1) // ROW_WIDTH_STEP) * ROW_WIDTH_STEP)
    return tokens[:, :width], segments[:, :width], learn[:, :width]


def tune(
    foundation: Foundation,
    examples: list[Example],
    *,
    mode: str = "full",
    settings: SFTSettings = SFTSettings(),
    seed: int = 0,
    progress: bool = False,
    mesh=None,
    fsdp: bool = False,
) -> tuple[NextWordModel, History]:
    """The model `instruction_tune` trains, and its training history."""
    if foundation.objective != "next-word":
        raise ValueError(f"this is a {foundation.objective} model: instruction tuning needs a next-word model, which writes answers")
    if not examples:
        raise ValueError("no examples to fine-tune on")
    for i, example in enumerate(examples):
        if not foundation.tokenizer.encode(example.response):
            raise ValueError(f"example {i + 1} has an empty response")
    rows = chat_rows(foundation.tokenizer, examples, foundation.model.config.max_len)
    tokens, segments, learn = without_padding_columns(*rows)
    model, trainable = build_assistant(foundation, mode, settings, seed)
    optimizer = new_optimizer(model, adamw(settings.steps, settings.warmup_steps, settings.weight_decay), settings.learning_rate, trainable)
    history = train_next_word(
        model,
        optimizer,
        tokens,
        segments,
        learn,
        steps=settings.steps,
        batch_size=settings.batch_size,
        seed=seed,
        progress=progress,
        desc="instruction tuning",
        mesh=mesh,
        fsdp=fsdp,
    )
    return model, history


def save_tuned(
    directory: str | os.PathLike, model: NextWordModel, tokenizer: BaseTokenizer, mode: str, history: History, *, adapters: SFTSettings | None = None
) -> Path:
    """Saves a tuned model as plain weights (a LoRA model merged); or, given the
    `adapters` settings it trained with, a LoRA model as it is, which
    `load_tuned` builds again (its share of trainable weights, its adapter)."""
    if mode == "lora" and adapters is None:
        model = merge_lora(nnx.clone(model))
    metadata: dict = {"mode": mode, "history": {"loss": history.loss, "accuracy": history.accuracy}}
    if mode == "lora" and adapters is not None:
        metadata["lora"] = {"rank": adapters.lora_rank, "alpha": adapters.lora_alpha}
    return checkpoints.save(directory, model, tokenizer, "assistant", metadata)


def load_tuned(directory: str | os.PathLike) -> tuple[NextWordModel, BaseTokenizer, str, History]:
    """A model `save_tuned` wrote: the model, its tokenizer, its mode and history."""
    manifest, tokenizer, config = checkpoints.open_checkpoint(directory, "assistant")
    meta = manifest.get("metadata", {})
    lora = meta.get("lora")
    build = lambda: NextWordModel(config, rngs=nnx.Rngs(0))
    model = nnx.eval_shape((lambda: add_lora(build(), lora["rank"], lora["alpha"])) if lora else build)
    checkpoints.restore_into(directory, model, manifest)
    with checkpoints.reading_metadata(directory):
        history = History(**meta["history"]) if meta.get("history") else History()
        return model, tokenizer, meta.get("mode", "full"), history
