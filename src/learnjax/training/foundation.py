"""A pre-trained language model and what it does: fill in a `[MASK]` (a masked
model) or continue a text (a next-word model). Saved and loaded as a model directory."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from learnjax.models.transformer import MaskedLanguageModel, NextWordModel
from learnjax.storage import checkpoints
from learnjax.text.tokenizer import MASK, MASK_ID, SPECIAL_TOKENS, BaseTokenizer
from learnjax.training.loops import History, predict
from learnjax.training.recipe import SAVED_KINDS, PretrainRecipe

# Each objective, the model it trains, and the kind its saved directory records.
OBJECTIVES = {"masked": (MaskedLanguageModel, SAVED_KINDS["masked"]), "next-word": (NextWordModel, SAVED_KINDS["next-word"])}


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

    def continuing_recipe(self, **changes) -> PretrainRecipe:
        """The recipe that continues pre-training this model on new text: its
        objective, tokenizer and size, read from the model; the training settings
        of its own recipe (else the defaults); then `changes`. A change to what
        the model fixes is refused (continued pre-training keeps the model), and
        `max_len` may be shorter than the model's position table, not longer."""
        base = self.recipe or PretrainRecipe()
        recipe = base.replace(**self.fixed_settings(), vocab_size=max(len(self.tokenizer), base.vocab_size), max_len=self.model.config.max_len)
        recipe = recipe.replace(**changes)
        check_continues(recipe, self)
        return recipe

    def fixed_settings(self) -> dict:
        """What this model fixes of the recipes that continue it: its objective, tokenizer and size."""
        config = self.model.config
        return {
            "objective": self.objective,
            "tokenizer": self.tokenizer.kind,
            "d_model": config.d_model,
            "n_layers": config.n_layers,
            "n_heads": config.n_heads,
            "d_ff": config.d_ff,
        }

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


def check_continues(recipe: PretrainRecipe, init: Foundation) -> None:
    """Refuses a recipe that does not fit the model it continues (`Foundation.continuing_recipe`)."""
    config = init.model.config
    for name, value in init.fixed_settings().items():
        if getattr(recipe, name) != value:
            raise ValueError(
                f"{name}={getattr(recipe, name)!r} differs from the model being continued ({name}={value!r}): "
                "continued pre-training keeps the model's objective, tokenizer and size"
            )
    if recipe.max_len > config.max_len:
        raise ValueError(f"max_len={recipe.max_len} is beyond the position table of the model being continued ({config.max_len} positions)")


def require_objective(foundation: Foundation, objective: str, why: str) -> None:
    if foundation.objective != objective:
        raise ValueError(f"this is a {foundation.objective} model, not a {objective} model: only a {objective} model {why}")


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
    require_objective(foundation, "masked", "fills in a [MASK]; a next-word model continues a text (generate)")
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
