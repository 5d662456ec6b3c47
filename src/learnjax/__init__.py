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
    "foundation_model": "training.pretraining",
    "mask_tokens": "training.masking",
    "masked_batch": "training.masking",
    "BagOfWordsClassifier": "models.transformer",
    "EncoderClassifier": "models.transformer",
    "TransformerConfig": "models.transformer",
    "EncoderConfig": "models.transformer",
    "MaskedLanguageModel": "models.transformer",
    "NextWordModel": "models.transformer",
    "Foundation": "training.foundation",
    "PretrainRecipe": "training.recipe",
    "NEXT_WORD_RECIPE": "training.recipe",
    "fill_mask": "training.foundation",
    "generate_text": "training.writing",
    "pretrain": "training.pretraining",
    "masked_prediction_step": "training.steps",
    "next_word_step": "training.steps",
    "supervised_step": "training.steps",
    "Tokenizer": "text.tokenizer",
}

__all__ = sorted(_HOMES, key=lambda name: (name[0].islower(), name))

if TYPE_CHECKING:  # what type checkers and editors see
    from learnjax.models.transformer import (
        BagOfWordsClassifier,
        EncoderClassifier,
        EncoderConfig,
        MaskedLanguageModel,
        NextWordModel,
        TransformerConfig,
    )
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.foundation import Foundation, fill_mask
    from learnjax.training.masking import mask_tokens, masked_batch
    from learnjax.training.pretraining import foundation_model, pretrain
    from learnjax.training.recipe import NEXT_WORD_RECIPE, PretrainRecipe
    from learnjax.training.steps import masked_prediction_step, next_word_step, supervised_step
    from learnjax.training.writing import generate_text


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'learnjax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"learnjax.{_HOMES[name]}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
