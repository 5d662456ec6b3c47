"""Checking generated text against the world it was learned from.

The corpus is written from `learnjax.world`, so a sentence a model writes about
that world can be checked: "Every day the pilot drives to the airport" is true,
"... to the bakery" is false, "... to the weekend" states no place at all.
Each fact prompt names a subject whose fact the world fixes (a place, a job, a
day, a thing, the weather, a time of day) and the kind of word that states it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from learnjax import world
from learnjax.corpus import HOW_OFTEN, _sentence


@dataclass(frozen=True)
class FactPrompt:
    prompt: str
    kind: str  # which fact: "activity", "job", "day", "colour", "weather", "meal"
    answer: str  # the word that states it truly
    candidates: frozenset[str]  # every word that would state a fact of this kind


THINGS = frozenset(a.thing for a in world.ACTIVITIES)
PLACES = frozenset(place for _, place in world.JOBS) | frozenset(a.place for a in world.ACTIVITIES)
RELATIVES = ("my aunt", "my uncle", "my sister", "my brother")


def _article(item: str) -> str:
    return "" if item.endswith("s") else " an" if item[0] in "aeiou" else " a"


def _activity(rng: random.Random) -> tuple[str, str, frozenset[str]]:
    a = rng.choice(world.ACTIVITIES)
    return f"at the {a.place}, {rng.choice(RELATIVES)} {rng.choice(HOW_OFTEN)} {a.verb.third}", a.thing, THINGS


def _job(rng: random.Random) -> tuple[str, str, frozenset[str]]:
    job, place = rng.choice(world.JOBS)
    return f"every day the {job} drives to the", place, PLACES


def _day(rng: random.Random) -> tuple[str, str, frozenset[str]]:
    i = rng.randrange(len(world.DAYS))
    return f"after {world.DAYS[i]} comes", world.DAYS[(i + 1) % len(world.DAYS)], frozenset(world.DAYS)


def _colour(rng: random.Random) -> tuple[str, str, frozenset[str]]:
    thing, colour = rng.choice(world.COLOURS)
    return f"the {thing} is", colour, frozenset(c for _, c in world.COLOURS)


def _weather(rng: random.Random) -> tuple[str, str, frozenset[str]]:
    condition, verb, item = rng.choice(world.WEATHER)
    return f"when it is {condition}, {rng.choice(RELATIVES)} {verb.third}{_article(item)}", item, frozenset(i for *_, i in world.WEATHER)


def _meal(rng: random.Random) -> tuple[str, str, frozenset[str]]:
    time, meal = rng.choice(world.MEALS)
    return f"in the {time}, {rng.choice(RELATIVES)} eats", meal, frozenset(m for _, m in world.MEALS)


KINDS = {"activity": _activity, "job": _job, "day": _day, "colour": _colour, "weather": _weather, "meal": _meal}


def fact_prompts(per_kind: int = 10, seed: int = 0) -> list[FactPrompt]:
    """`per_kind` prompts of each kind of fact, in sentence frames of the corpus."""
    rng = random.Random(seed)
    prompts = []
    for kind, make in KINDS.items():
        for _ in range(per_kind):
            text, answer, candidates = make(rng)
            prompts.append(FactPrompt(_sentence(text), kind, answer, candidates))
    return prompts


def judge(prompt: FactPrompt, words: list[str]) -> str:
    """"true", "false" or "no fact": whether the continuation's first word of the
    prompt's kind (within its first sentence) states the fact truly."""
    for word in words:
        if word in (".", "?", "!", "[END]"):
            break
        if word in prompt.candidates:
            return "true" if word == prompt.answer else "false"
    return "no fact"
