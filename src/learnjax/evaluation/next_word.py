"""Next-word accuracy: measured by letting the model write.

Apart from `language_model`, whose measures read the model's scores without
writing, so that a change to the sampler re-measures this one alone.
"""

from __future__ import annotations

import numpy as np

from learnjax.data import corpus
from learnjax.training.foundation import Foundation
from learnjax.training.writing import generate_text


def next_word_accuracy(foundation: Foundation, probes: list[corpus.NextWordProbe] | None = None) -> dict:
    """Share of held-out prompts whose greedy next word is the answer."""
    probes = corpus.next_word_probes() if probes is None else probes
    generated = generate_text(foundation, [p.prompt for p in probes], max_new_tokens=1)
    right = [g.tokens[:1] == [p.answer] for g, p in zip(generated, probes)]
    return {"accuracy": float(np.mean(right)), "n": len(probes), "answers": [g.tokens[0] for g in generated]}
