"""A next-word foundation model writing text: `generate_text`.

Apart from `foundation.py` so that training and saving a foundation model does
not import the sampler: a change to the sampler recomputes what writes text,
not the foundation models.
"""

from __future__ import annotations

import dataclasses

from learnjax.models.generation import Generation, Sampling, generate
from learnjax.text.tokenizer import END
from learnjax.training.foundation import Foundation, require_objective


def generate_text(
    foundation: Foundation, prompts: list[str], *, max_new_tokens: int = 16, sampling: Sampling = Sampling(), seed: int = 0
) -> list[Generation]:
    """Continues each prompt with a next-word foundation model (`learnjax.models.generation.generate`).

    >>> from learnjax import NEXT_WORD_RECIPE, foundation_model
    >>> generate_text(foundation_model(NEXT_WORD_RECIPE), ["Today I went to the café and drank"])[0].text
    'coffee.'
    """
    require_objective(foundation, "next-word", "writes text; a masked model fills in a [MASK] (fill-mask)")
    tokenizer = foundation.tokenizer
    generated = generate(foundation.model, tokenizer, prompts, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed)
    if tokenizer.kind == "word":
        return generated
    # `generate` joins tokens as words; subword pieces join into words as their tokenizer writes them.
    return [dataclasses.replace(g, text=tokenizer.decode(tokenizer.ids[t] for t in g.tokens if t != END)) for g in generated]
