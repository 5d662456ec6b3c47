"""What a pre-training run is: its objective, corpus, model size and budget
(`PretrainRecipe`), and the recipes the pages use."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from learnjax.text.subword import VOCAB_SIZE
from learnjax.text.tokenizer import SPECIAL_TOKENS, TOKENIZER_KINDS

# Each objective and the kind its saved directory records (the model each
# trains: `foundation.OBJECTIVES`; this module imports no JAX, so a recipe is
# made and checked before anything loads it).
SAVED_KINDS = {"masked": "masked_lm", "next-word": "next_word_lm"}


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
    d_ff: int | None = None  # the MLP's width; None: twice d_model
    steps: int = 1800
    batch_size: int = 64  # packed rows of max_len tokens, about 2.3 texts each
    learning_rate: float = 5e-3
    warmup_steps: int = 100
    # Above BERT's 15%: more predictions per step, and a small model on short
    # texts still has enough context left to learn from.
    mask_rate: float = 0.25  # masked prediction only
    seed: int = 0
    faq_share: float = 0.0  # share of the corpus replaced by question-and-answer text (`questions.with_faq`)

    def __post_init__(self):
        if self.d_ff is None and isinstance(self.d_model, int):
            object.__setattr__(self, "d_ff", 2 * self.d_model)  # the proportion of the default recipe (and of BERT's 4x, halved)
        if self.objective not in SAVED_KINDS:
            raise ValueError(f"objective must be one of {', '.join(SAVED_KINDS)}; got {self.objective!r}")
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

    def replace(self, **changes) -> PretrainRecipe:
        """The recipe with `changes`; a new `d_model` brings its own `d_ff` where this
        recipe's followed the rule (twice `d_model`) and no `d_ff` is given."""
        if "d_model" in changes and "d_ff" not in changes and self.d_ff == 2 * self.d_model:
            changes["d_ff"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --8<-- [start:corpus_recipe]
CHARS_PER_TOKEN = 4  # mail or prose in a subword vocabulary of thousands of tokens: about 4 characters a token, a little fewer in a smaller one
CORPUS_PASSES = 3  # each token of the corpus read about this many times, at a different masking each time
# A masked-word model first learns only how often each token occurs: on 1 MB of
# generated mail its loss was still near the tokens' unigram entropy after 300
# steps, and its features no better than a random model's; which words go
# together (what tells a topic) came in the steps after (`benchmarks.mail_features`).
# At `CORPUS_VOCAB_SIZE` a step costs about half of what it does at 8,000 tokens,
# so the same time buys twice the steps.
MIN_STEPS = 2000
# The output layer scores every token of the vocabulary at each hidden word, and
# the rarer a token the fewer steps learn it. On 5 MB of generated mail, 2,000
# pieces and 2,000 steps took about the CPU time of 8,000 and 1,000 steps, and
# made the pre-trained classifier beat the one trained from scratch, which 8,000
# pieces did not (`benchmarks.real_mail` prints both; `benchmarks.mail_features`
# how often the topic words' nearest tokens are words of the same topic).
CORPUS_VOCAB_SIZE = 2000
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
    least `MIN_STEPS`: a small corpus is read more often. Vocabulary (subword
    tokens): `CORPUS_VOCAB_SIZE` pieces.
    """
    chosen, why = {"tokenizer": "subword", **given}, {}
    if "vocab_size" not in given and chosen["tokenizer"] == "subword":
        chosen["vocab_size"] = CORPUS_VOCAB_SIZE
        why["vocab_size"] = (f"a vocabulary of {CORPUS_VOCAB_SIZE} pieces: frequent words whole, rarer ones in pieces, "
                             "each seen often enough to learn, and cheaper steps than a larger one")
    tokens = shape.characters / CHARS_PER_TOKEN
    median_tokens = shape.median_characters / CHARS_PER_TOKEN
    if "max_len" not in given:
        chosen["max_len"] = min(ROW_LENGTHS, key=lambda row: abs(math.log2(row) - math.log2(max(median_tokens / 4, 1))))
        why["max_len"] = f"rows of {chosen['max_len']} tokens: the median text is about {median_tokens:.0f} tokens, read in windows"
    if "steps" not in given:
        recipe = PretrainRecipe(**chosen)
        chosen["steps"] = max(MIN_STEPS, round(CORPUS_PASSES * tokens / (recipe.batch_size * recipe.max_len)))
        why["steps"] = (f"{chosen['steps']} steps of {recipe.batch_size} rows: about {CORPUS_PASSES} readings of the corpus's "
                        f"{tokens / 1e6:.2f} million tokens" + (f" (at least {MIN_STEPS})" if chosen["steps"] == MIN_STEPS else ""))
    return PretrainRecipe(**chosen), why
# --8<-- [end:corpus_recipe]


NEXT_WORD_RECIPE = PretrainRecipe(objective="next-word")
"""The generative foundation model: the same corpus, model size and budget, the next-word objective."""


MIXED_RECIPE = NEXT_WORD_RECIPE.replace(faq_share=0.1)
"""The generative foundation model of a corpus in which a tenth of the texts are
questions and answers about the world (not about the entities held out from
instruction tuning)."""
