"""Things the model has heard of but knows nothing about, and the answer to give.

An unknown entity is a word the corpus uses (so it has its own token, never
`[UNK]`) about which the world states no fact of the kind asked: the corpus
says that people drink coffee at the café, never what colour coffee is; it says
that a doctor works at the hospital, never what people do there. Asked "what
colour is the coffee?", the only right answer is the abstention, `ABSTENTION`.

The unknown entities are split like the known ones (`questions.entity_splits`):
preference and reward tuning see the `train` ones; choices are made on `dev`;
`held_out` is asked only in the final test. This module is kept apart from the
corpus's own: the corpus is unchanged, so every foundation model stays as it is.
"""

from __future__ import annotations

import random
from functools import lru_cache

from learnjax.data import world
from learnjax.data.facts import Fact
from learnjax.data.questions import DEV_SHARE, HELD_OUT_SHARE, QUESTIONS, Example, answer_text, question_text

# The assistant's answers are lower-case words, as its tokenizer writes them.
ABSTENTION = "i don't know."

# Words of the corpus with no fact of the kind: things without a colour in the
# world (food, drink, clothes, ...), workplaces without an activity.
UNKNOWN = {
    "colour": (
        "coffee",
        "beer",
        "tea",
        "bread",
        "medicine",
        "pizza",
        "pasta",
        "football",
        "wine",
        "soup",
        "umbrella",
        "coat",
        "scarf",
        "raincoat",
        "cake",
        "turkey",
        "money",
        "frisbee",
        "puppy",
        "garden",
        "film",
        "prize",
        "voucher",
        "laundry",
    ),
    "activity": ("hospital", "farm", "court"),
}


def unknown_facts() -> list[Fact]:
    """One `Fact` per unknown entity, its answer empty: the world has none."""
    return [Fact(kind, entity, "") for kind, entities in UNKNOWN.items() for entity in entities]


@lru_cache(maxsize=4)
def unknown_splits(seed: int = 0) -> dict[str, frozenset[tuple[str, str]]]:
    """(kind, entity) pairs of the unknown entities in `train`, `dev` and
    `held_out`, disjoint, with the shares of the known ones."""
    rng = random.Random(seed)
    splits: dict[str, set[tuple[str, str]]] = {"train": set(), "dev": set(), "held_out": set()}
    for kind, names in UNKNOWN.items():
        entities = sorted(names)
        rng.shuffle(entities)
        n_held = max(1, round(HELD_OUT_SHARE * len(entities)))
        n_dev = max(1, round(DEV_SHARE * len(entities)))
        for i, entity in enumerate(entities):
            splits["held_out" if i < n_held else "dev" if i < n_held + n_dev else "train"].add((kind, entity))
    return {name: frozenset(pairs) for name, pairs in splits.items()}


def unknown_questions(split: str) -> list[Example]:
    """Every phrasing of the question about each unknown entity of `split`, the
    abstention its expected answer."""
    pairs = unknown_splits()[split]
    return [Example(question_text(q, f), ABSTENTION, f) for f in unknown_facts() if (f.kind, f.entity) in pairs for q in QUESTIONS[f.kind]]


def made_up_answer(example: Example, rng: random.Random) -> str:
    """A fact of the kind asked that the world does not hold for this entity: a
    true answer about another entity of the same kind, as a hallucination would
    be ("it is red." about the coffee)."""
    from learnjax.data.facts import world_facts

    asked = example.fact
    if asked is None:
        raise ValueError(f"{example.prompt!r} asks about no fact of the world: nothing to make up")
    others = [f for f in world_facts() if f.kind == asked.kind and f.answer != asked.answer]
    return answer_text(rng.choice(others))


def leaks(texts: list[str]) -> list[str]:
    """The texts that state a fact of an unknown entity's kind about it: a colour
    word in a text naming an unknown colour entity, an activity's thing in a
    text naming an unknown place. Empty when the unknowns are unknown."""
    from learnjax.text.tokenizer import split_words

    stating = {"colour": {colour for _, colour in world.COLOURS}, "activity": {a.thing for a in world.ACTIVITIES}}
    found = []
    for text in texts:
        words = set(split_words(text.lower()))
        if any(entity in words and words & stating[kind] for kind, entities in UNKNOWN.items() for entity in entities):
            found.append(text)
    return found


def verdict(answer: str, example: Example) -> str:
    """ "abstain" (the abstention: right about an unknown entity, a false
    abstention about a known one), "right" (the expected fact, word for word) or
    "wrong" (any other answer: about an unknown entity, a hallucination)."""
    if answer == ABSTENTION:
        return "abstain"
    return "right" if answer == example.response else "wrong"


def with_abstentions(examples: list[Example], n_abstentions: int, seed: int = 0) -> list[Example]:
    """`examples` with their first `n_abstentions` replaced by questions about the
    train split's unknown entities answered with the abstention (each once
    before any repeats), shuffled in: supervised data that shows the answer
    exists, as an assistant's data holds some refusals."""
    pool = unknown_questions("train")
    rng = random.Random(seed)
    abstentions: list[Example] = []
    while len(abstentions) < n_abstentions:
        abstentions += rng.sample(pool, len(pool))
    mixed = abstentions[:n_abstentions] + examples[n_abstentions:]
    rng.shuffle(mixed)
    return mixed
