"""learnjax: how generative AI learns, in runnable JAX, Flax (nnx) and Optax.

The most used pieces are re-exported here; each lives in a module of its own.
They are imported on first use, so that `import learnjax` (and the `learnjax`
command's `--help`) does not wait for JAX to load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Each re-exported name and the module it lives in.
_HOMES = {
    "foundation_model": "cache",
    "mask_tokens": "masking", "masked_batch": "masking",
    "BagOfWordsClassifier": "model", "EncoderClassifier": "model", "EncoderConfig": "model", "MaskedLanguageModel": "model",
    "NextWordModel": "model",
    "Foundation": "pretraining", "PretrainRecipe": "pretraining", "NEXT_WORD_RECIPE": "pretraining", "fill_mask": "pretraining",
    "generate_text": "pretraining", "pretrain": "pretraining",
    "masked_prediction_step": "steps", "next_word_step": "steps", "supervised_step": "steps",
    "Tokenizer": "tokenizer",
}

__all__ = sorted(_HOMES, key=lambda name: (name[0].islower(), name))

if TYPE_CHECKING:  # what type checkers and editors see
    from learnjax.cache import foundation_model
    from learnjax.masking import mask_tokens, masked_batch
    from learnjax.model import BagOfWordsClassifier, EncoderClassifier, EncoderConfig, MaskedLanguageModel, NextWordModel
    from learnjax.pretraining import NEXT_WORD_RECIPE, Foundation, PretrainRecipe, fill_mask, generate_text, pretrain
    from learnjax.steps import masked_prediction_step, next_word_step, supervised_step
    from learnjax.tokenizer import Tokenizer


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'learnjax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"learnjax.{_HOMES[name]}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
