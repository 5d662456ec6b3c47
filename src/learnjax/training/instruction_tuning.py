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
from flax import nnx

from learnjax.data.facts import Fact, statement_prompt
from learnjax.data.questions import Example, chat_ids, chat_rows
from learnjax.models.generation import continue_ids, join_words
from learnjax.models.lora import add_lora, merge_lora
from learnjax.models.transformer import NextWordModel
from learnjax.storage import checkpoints
from learnjax.storage.progress import History
from learnjax.text.tokenizer import END_ID, Tokenizer
from learnjax.training.foundation import Foundation
from learnjax.training.loops import adamw, new_optimizer, owned_copy, train_next_word
from learnjax.training.recipe import MIXED_RECIPE
from learnjax.training.writing import generate_text

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


@dataclass
class Assistant:
    """An instruction-tuned next-word model with its tokenizer."""

    model: NextWordModel
    tokenizer: Tokenizer
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
        model = merge_lora(nnx.clone(self.model)) if self.mode == "lora" else self.model  # saved as plain weights
        metadata = {"mode": self.mode, "history": {"loss": self.history.loss, "accuracy": self.history.accuracy}}
        return checkpoints.save(directory, model, self.tokenizer, "assistant", metadata)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Assistant:
        manifest, tokenizer, config = checkpoints.open_checkpoint(directory, "assistant")
        model = nnx.eval_shape(lambda: NextWordModel(config, rngs=nnx.Rngs(0)))
        checkpoints.restore_into(directory, model, manifest)
        with checkpoints.reading_metadata(directory):
            meta = manifest.get("metadata", {})
            return cls(model, tokenizer, meta.get("mode", "full"), History(**meta["history"]) if meta.get("history") else History())


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
    if foundation.objective != "next-word":
        raise ValueError(f"this is a {foundation.objective} model: instruction tuning needs a next-word model, which writes answers")
    if not examples:
        raise ValueError("no examples to fine-tune on")
    for i, example in enumerate(examples):
        if not foundation.tokenizer.encode(example.response):
            raise ValueError(f"example {i + 1} has an empty response")
    tokens, segments, learn = chat_rows(foundation.tokenizer, examples, foundation.model.config.max_len)
    model, trainable = build_assistant(foundation, mode, settings, seed)
    optimizer = new_optimizer(model, adamw(settings.steps, settings.warmup_steps, settings.weight_decay), settings.learning_rate, trainable)
    history = train_next_word(model, optimizer, tokens, segments, learn, steps=settings.steps, batch_size=settings.batch_size,
                              seed=seed, progress=progress, desc="instruction tuning", mesh=mesh, fsdp=fsdp)
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
