"""learnjax: how generative AI learns, in runnable JAX, Flax (nnx) and Optax.

The most used pieces are re-exported here; each lives in a module of its own.
"""

from learnjax.cache import foundation_model
from learnjax.masking import mask_tokens, masked_batch
from learnjax.model import BagOfWordsClassifier, EncoderClassifier, EncoderConfig, MaskedLanguageModel
from learnjax.pretraining import Foundation, PretrainRecipe, fill_mask, pretrain
from learnjax.steps import masked_prediction_step, supervised_step
from learnjax.tokenizer import Tokenizer

__all__ = [
    "BagOfWordsClassifier", "EncoderClassifier", "EncoderConfig", "Foundation", "MaskedLanguageModel",
    "PretrainRecipe", "Tokenizer", "fill_mask", "foundation_model", "mask_tokens", "masked_batch",
    "masked_prediction_step", "pretrain", "supervised_step",
]
