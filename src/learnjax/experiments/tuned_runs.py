"""Instruction-tuned models, kept in the cache by what they are made from.

A lesson that fine-tunes assistants trains many: each learning rate of a
search, each seed. Each model is a cache entry (kind "tuned") keyed by the
content of the foundation it starts from, the examples, the mode, the seed,
the settings, and the code of the training alone (`learnjax.training.sft`, not
the sampler): a change to how assistants answer scores the trained models
again without training them again, and two lessons that tune the same model on
the same examples share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from learnjax.data.questions import Example
from learnjax.storage.cache import cached_model
from learnjax.storage.checkpoints import model_config, params_fingerprint
from learnjax.training.foundation import Foundation
from learnjax.training.instruction_tuning import Assistant
from learnjax.training.sft import SFTSettings, save_tuned, tune


def foundation_fingerprint(foundation: Foundation) -> str:
    """A hash of everything of `foundation` that tuning reads: its config, its
    weights and its tokenizer."""
    text = json.dumps({"config": model_config(foundation.model).to_dict(), "objective": foundation.objective}, sort_keys=True)
    digest = hashlib.sha256(text.encode() + params_fingerprint(foundation.model).encode() + foundation.tokenizer.to_json().encode())
    return digest.hexdigest()[:16]


def examples_fingerprint(examples: list[Example]) -> str:
    """A hash of the prompts and responses, in order (what tuning reads of them)."""
    return hashlib.sha256(json.dumps([[e.prompt, e.response] for e in examples]).encode()).hexdigest()[:16]


def train_and_save(directory: Path, foundation: Foundation, examples: list[Example], mode: str, seed: int, settings: SFTSettings) -> None:
    """Tunes `foundation` on `examples` and saves the model as it trained (a LoRA
    model with its adapters, so that its trainable share can be read)."""
    model, history = tune(foundation, examples, mode=mode, settings=settings, seed=seed)
    save_tuned(directory, model, foundation.tokenizer, mode, history, adapters=settings)


def tuned_assistant(
    foundation: Foundation, examples: list[Example], *, mode: str = "full", seed: int = 0, settings: SFTSettings = SFTSettings()
) -> Assistant:
    """`instruction_tune(foundation, examples, ...)`, trained once and then read
    from the cache: the same model, bit for bit (training is deterministic)."""
    params = {
        "foundation": foundation_fingerprint(foundation),
        "examples": examples_fingerprint(examples),
        "n_examples": len(examples),
        "mode": mode,
        "seed": seed,
        "settings": dataclasses.asdict(settings),
    }
    return cached_model(
        params,
        train_and_save,
        read=Assistant.load,
        make=lambda path: train_and_save(path, foundation, examples, mode, seed, settings),
        what=f"instruction tuning ({mode}, {len(examples)} examples, seed {seed}, learning rate {settings.learning_rate:g})",
        entry=None,
        kind="tuned",
    )
