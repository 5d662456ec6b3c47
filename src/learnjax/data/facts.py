"""The facts of the world, and checking text against them.

The corpus is written from `learnjax.data.world`, so a sentence a model writes about
that world can be checked: "Every day the pilot drives to the airport" is true,
"... to the bakery" is false, "... to the weekend" states no place at all. Each
fact is about one entity (a place, a job, a day, a thing, a kind of weather, a
time of day) and is stated by one word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from learnjax.data import world
from learnjax.data.phrasing import HOW_OFTEN, article, sentence, third_person


@dataclass(frozen=True)
class Fact:
    kind: str  # "activity", "job", "day", "colour", "weather", "meal"
    entity: str  # what the fact is about
    answer: str  # the word that states it
    verb: str = ""  # activities and weather: the verb that goes with the answer ("drink", "wear")


def world_facts() -> list[Fact]:
    """One fact per entity of the world."""
    days = world.DAYS
    return [
        *(Fact("activity", a.place, a.thing, a.verb.base) for a in world.ACTIVITIES),
        *(Fact("job", job, place) for job, place in world.JOBS),
        *(Fact("day", day, days[(i + 1) % len(days)]) for i, day in enumerate(days)),
        *(Fact("colour", thing, colour) for thing, colour in world.COLOURS),
        *(Fact("weather", condition, item, verb.base) for condition, verb, item in world.WEATHER),
        *(Fact("meal", meal.when, meal.food) for meal in world.MEALS),
    ]


KINDS = ("activity", "job", "day", "colour", "weather", "meal")
# The words that would state a fact of each kind, true or false.
CANDIDATES = {
    kind: frozenset(f.answer for f in world_facts() if f.kind == kind)
    | (frozenset(a.place for a in world.ACTIVITIES) if kind == "job" else frozenset())
    for kind in KINDS
}
RELATIVES = ("my aunt", "my uncle", "my sister", "my brother")


def meal_time(when: str) -> str:
    """How a sentence says a meal's time or occasion: "in the morning", "at a birthday"."""
    return next(meal.at for meal in world.MEALS if meal.when == when)


def statement_prompt(fact: Fact, rng: random.Random) -> str:
    """The start of a sentence in one of the corpus's frames that the fact's
    answer word would finish: "At the teahouse, my aunt usually drinks"."""
    subject = rng.choice(RELATIVES)
    text = {
        "activity": lambda: f"at the {fact.entity}, {subject} {rng.choice(HOW_OFTEN)} {third_person(fact.verb)}",
        "job": lambda: f"every day the {fact.entity} drives to the",
        "day": lambda: f"after {fact.entity} comes",
        "colour": lambda: f"the {fact.entity} is",
        "weather": lambda: f"when it is {fact.entity}, {subject} {third_person(fact.verb)} {article(fact.answer)}".rstrip(),
        "meal": lambda: f"{meal_time(fact.entity)}, {subject} eats",
    }[fact.kind]()
    return sentence(text)


@dataclass(frozen=True)
class FactPrompt:
    prompt: str
    fact: Fact


def fact_prompts(per_kind: int = 10, seed: int = 0, facts: list[Fact] | None = None) -> list[FactPrompt]:
    """`per_kind` prompts of each kind of fact, about facts drawn from `facts`
    (default: the whole world)."""
    rng = random.Random(seed)
    facts = world_facts() if facts is None else facts
    prompts = []
    for kind in KINDS:
        of_kind = [f for f in facts if f.kind == kind]
        for _ in range(per_kind if of_kind else 0):
            fact = rng.choice(of_kind)
            prompts.append(FactPrompt(statement_prompt(fact, rng), fact))
    return prompts


def judge(fact: Fact, words: list[str]) -> str:
    """ "true", "false" or "no fact": whether the first word of the fact's kind in
    `words` (within their first sentence) states the fact truly."""
    for word in words:
        if word in (".", "?", "!", "[END]"):
            break
        if word in CANDIDATES[fact.kind]:
            return "true" if word == fact.answer else "false"
    return "no fact"
