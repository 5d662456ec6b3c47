"""Instruction data the project writes itself: questions about the world, their
answers, and the chat template that turns a next-word model into an assistant.

Every fact of `learnjax.data.world` becomes questions in several phrasings, each with
one answer. The facts are split by *entity* (the place, job, day, thing, kind of
weather or time of day a question is about): fine-tuning sees questions about
the `train` entities only; learning rates are chosen on the `dev` entities; the
`held_out` entities are asked about only in the final test. Every entity still
appears in the pre-training corpus, so a model may know what it is never taught
to say.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from learnjax.data.facts import KINDS, Fact, meal_time, world_facts
from learnjax.data.phrasing import article
from learnjax.text.tokenizer import ASSISTANT_ID, CLS_ID, END_ID, USER_ID, Tokenizer, split_words

# Several phrasings of each question; one answer form per kind.
QUESTIONS = {
    "activity": ("what do people do at the {entity}?", "what can you do at the {entity}?", "why do people go to the {entity}?"),
    "job": ("where does a {entity} work?", "where do you find a {entity} at work?", "which place does a {entity} work at?"),
    "day": ("which day comes after {entity}?", "what day follows {entity}?", "what is the day after {entity}?"),
    "colour": ("what colour is the {entity}?", "which colour does the {entity} have?", "what colour is a {entity}?"),
    "weather": ("what do people wear when it is {entity}?", "what should you take when it is {entity}?",
                "what do you need when it is {entity}?"),
    "meal": ("what do people eat {at}?", "what do people have {at}?", "what is eaten {at}?"),
}


def question_text(phrasing: str, fact: Fact) -> str:
    """A phrasing of `QUESTIONS` asked about `fact`'s entity."""
    return phrasing.format(entity=fact.entity, at=meal_time(fact.entity) if fact.kind == "meal" else "")


def answer_text(fact: Fact) -> str:
    """The whole answer, as the assistant is taught to give it. The word that
    states the fact follows the kind of word it follows in the corpus (a verb,
    "is", "at the"): where the model learned to recall it."""
    return {
        "activity": lambda: f"they {fact.verb} {fact.answer}.",
        "job": lambda: f"at the {fact.answer}.",
        "day": lambda: f"it is {fact.answer}.",
        "colour": lambda: f"it is {fact.answer}.",
        "weather": lambda: f"they {fact.verb} {article(fact.answer)}{fact.answer}.",
        "meal": lambda: f"they eat {fact.answer}.",
    }[fact.kind]()


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str
    fact: Fact | None = None


# Share of each kind's entities held out, and given to the dev split: every kind
# is in both, with its natural weight (at least one entity each).
HELD_OUT_SHARE, DEV_SHARE = 0.35, 0.2


@lru_cache(maxsize=4)
def entity_splits(seed: int = 0) -> dict[str, frozenset[tuple[str, str]]]:
    """(kind, entity) pairs of the `train`, `dev` and `held_out` splits, disjoint."""
    rng = random.Random(seed)
    splits = {"train": set(), "dev": set(), "held_out": set()}
    for kind in KINDS:
        entities = sorted(f.entity for f in world_facts() if f.kind == kind)
        rng.shuffle(entities)
        n_held = max(1, round(HELD_OUT_SHARE * len(entities)))
        n_dev = max(1, round(DEV_SHARE * len(entities)))
        for i, entity in enumerate(entities):
            split = "held_out" if i < n_held else "dev" if i < n_held + n_dev else "train"
            splits[split].add((kind, entity))
    return {name: frozenset(pairs) for name, pairs in splits.items()}


def facts_of(split: str) -> list[Fact]:
    pairs = entity_splits()[split]
    return [f for f in world_facts() if (f.kind, f.entity) in pairs]


def questions(split: str) -> list[Example]:
    """Every phrasing of every question about the split's entities."""
    return [Example(question_text(q, f), answer_text(f), f) for f in facts_of(split) for q in QUESTIONS[f.kind]]


def training_examples(n: int, seed: int = 0) -> list[Example]:
    """`n` fine-tuning examples about the train entities, drawn with `seed`:
    every (question, phrasing) once before any repeats."""
    pool = questions("train")
    rng = random.Random(seed)
    examples = []
    while len(examples) < n:
        examples += rng.sample(pool, len(pool))
    return examples[:n]


# --8<-- [start:chat_template]
def chat_ids(tokenizer: Tokenizer, prompt: str,
             response: str | None = None) -> list[int]:
    """The chat template: `[CLS] [USER] prompt [ASSISTANT] response [END]`, or up
    to `[ASSISTANT]` when the response is the model's to write."""
    ids = [CLS_ID, USER_ID, *tokenizer.encode(prompt), ASSISTANT_ID]
    return ids if response is None else [*ids, *tokenizer.encode(response), END_ID]


def chat_rows(tokenizer: Tokenizer, examples: list[Example],
              max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Examples as rows (N, max_len), one per row: tokens, segments (1 on the
    example, 0 on padding) and `learn`, 1 on the response's tokens and its
    `[END]`: the only tokens whose prediction counts in the loss."""
    tokens = np.zeros((len(examples), max_len), np.int32)
    for i, example in enumerate(examples):
        ids = chat_ids(tokenizer, example.prompt, example.response)
        if len(ids) > max_len:
            raise ValueError(
                f"example {i + 1} has {len(ids)} tokens with the chat template; "
                f"the model reads at most {max_len}: {example.prompt[:60]!r}")
        tokens[i, : len(ids)] = ids
    segments = (tokens != 0).astype(np.int32)
    learn = ((np.cumsum(tokens == ASSISTANT_ID, axis=1) > 0)
             & (tokens != ASSISTANT_ID) & (segments > 0))
    return tokens, segments, learn.astype(np.int32)
# --8<-- [end:chat_template]


def faq_texts(facts: list[Fact]) -> list[str]:
    """Each fact in each phrasing as question-and-answer text in a web page's
    FAQ style: plain words, no chat tokens, as real pre-training corpora hold."""
    return [f"Question: {question_text(q, fact)} Answer: {answer_text(fact)}" for fact in facts for q in QUESTIONS[fact.kind]]


def with_faq(texts: list[str], share: float, seed: int = 0) -> list[str]:
    """`texts` with `share` of them replaced by FAQ-style questions and answers
    about the world, as web text holds them ("Question: ... Answer: ..."),
    about the entities that instruction tuning trains on only. Each replaced
    text has exactly as many tokens as the FAQ text that replaces it: the same
    number of texts and of tokens."""
    if not 0 <= share < 1:
        raise ValueError(f"faq_share must be in [0, 1), got {share}")
    rng = random.Random(seed + 1)
    by_length: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        by_length.setdefault(len(split_words(text)), []).append(i)
    for indices in by_length.values():
        rng.shuffle(indices)
    faqs = [(faq, len(split_words(faq))) for faq in faq_texts(facts_of("train"))]
    texts, n = list(texts), round(share * len(texts))
    fitting = [(faq, length) for faq, length in faqs if by_length.get(length)]
    for replaced in range(n):
        if not fitting:  # every text of an FAQ text's length is replaced already
            raise ValueError(f"faq_share={share} replaces {n} texts, but only {replaced} have the length of an FAQ text")
        faq, length = rng.choice(fitting)
        texts[by_length[length].pop()] = faq
        if not by_length[length]:
            fitting = [(f, k) for f, k in fitting if k != length]
    return texts
