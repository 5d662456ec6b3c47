"""Instruction tuning: from a model that continues text to one that answers.

Supervised fine-tuning (SFT) on prompt/response pairs in a chat template: the
next-word step of pre-training, with the loss counted on the response's tokens
only. Three modes, on the same architecture and budget:

- `full`: start from a generative foundation model and update every weight;
- `lora`: start from it, freeze it, and train low-rank adapters (`learnjax.models.lora`);
- `scratch`: the same architecture from random weights: no pre-training.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learnjax.data.facts import Fact, statement_prompt
from learnjax.data.questions import Example, chat_ids
from learnjax.models.generation import continue_ids, join_words
from learnjax.models.transformer import NextWordModel
from learnjax.storage.progress import History
from learnjax.text.tokenizer import END_ID, BaseTokenizer
from learnjax.training.foundation import Foundation
from learnjax.training.sft import ASSISTANT_RECIPE, MODES, SFTSettings, build_assistant, load_tuned, save_tuned, tune
from learnjax.training.writing import generate_text

__all__ = [
    "ASSISTANT_RECIPE", "MODES", "Assistant", "SFTSettings", "build_assistant", "instruction_tune", "knows", "score_answers", "untuned",
]


@dataclass
class Assistant:
    """An instruction-tuned next-word model with its tokenizer."""

    model: NextWordModel
    tokenizer: BaseTokenizer
    mode: str
    history: History

    def answer(self, questions: list[str], max_new_tokens: int = 10) -> list[str]:
        """Greedy answers, one per question, in the chat template."""
        for question in questions:
            if not self.tokenizer.encode(question):
                raise ValueError(f"question {question!r} is empty")
        prompts = [chat_ids(self.tokenizer, q) for q in questions]
        answers = continue_ids(self.model, prompts, max_new_tokens=max_new_tokens, names=questions)
        return [join_words([self.tokenizer.vocab[i] for i in (ids[: ids.index(END_ID)] if END_ID in ids else ids)]) for ids in answers]

    def save(self, directory: str | os.PathLike) -> Path:
        return save_tuned(directory, self.model, self.tokenizer, self.mode, self.history)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Assistant:
        return cls(*load_tuned(directory))


def instruction_tune(
    foundation: Foundation,
    examples: list[Example],
    *,
    mode: str = "full",
    settings: SFTSettings = SFTSettings(),
    seed: int = 0,
    progress: bool = False,
    mesh=None,
    fsdp: bool = False,
) -> Assistant:
    """Fine-tunes `foundation` (a next-word model) on prompt/response examples
    (over the devices of `mesh`, if given: see `learnjax.training.sharding`)."""
    model, history = tune(foundation, examples, mode=mode, settings=settings, seed=seed, progress=progress, mesh=mesh, fsdp=fsdp)
    return Assistant(model, foundation.tokenizer, mode, history)


def untuned(foundation: Foundation) -> Assistant:
    """The foundation model itself, asked in the chat template it was never taught."""
    return Assistant(foundation.model, foundation.tokenizer, "untuned", History())


def score_answers(answers: list[str], examples: list[Example]) -> dict:
    """Exact-match and contains-the-answer accuracy, overall and per kind of fact."""
    exact = [a == e.response for a, e in zip(answers, examples)]
    contains = [e.fact.answer in a.replace(".", " ").split() for a, e in zip(answers, examples)]
    kinds = sorted({e.fact.kind for e in examples})
    per_kind = {
        kind: {"exact": float(np.mean([x for x, e in zip(exact, examples) if e.fact.kind == kind])),
               "contains": float(np.mean([x for x, e in zip(contains, examples) if e.fact.kind == kind])),
               "n": sum(e.fact.kind == kind for e in examples)}
        for kind in kinds
    }
    return {"exact": float(np.mean(exact)), "contains": float(np.mean(contains)), "n": len(examples), "per_kind": per_kind}


def knows(foundation: Foundation, facts: list[Fact], per_fact: int = 3, seed: int = 0) -> dict:
    """Whether a next-word model completes each fact in the corpus's own phrasing
    ("At the teahouse, my aunt usually drinks" -> tea): what it knows, asked the
    way it read it. A fact counts as known when most of its prompts are right."""
    rng = random.Random(seed)
    prompts = [(fact, statement_prompt(fact, rng)) for fact in facts for _ in range(per_fact)]
    generated = generate_text(foundation, [p for _, p in prompts], max_new_tokens=1)
    right = np.array([g.tokens[:1] == [fact.answer] for (fact, _), g in zip(prompts, generated)]).reshape(len(facts), per_fact)
    known = right.mean(axis=1) > 0.5
    kinds = sorted({f.kind for f in facts})
    return {"known": float(known.mean()), "prompts_right": float(right.mean()), "n": len(facts),
            "per_kind": {kind: float(np.mean([k for k, f in zip(known, facts) if f.kind == kind])) for kind in kinds}}
