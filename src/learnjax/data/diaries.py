"""Summarisation data from the world: a person's diary of a week, and its summary.

A diary lists the days a person went out and where ("tom: monday café,
wednesday zoo, friday café."); its summary is written from the same facts by
one rule ("tom went to the café twice and the zoo once."): the places counted,
the more visited first (ties: the first visited first). No sentence of the
diary can be copied as the summary: writing it takes reading the whole diary,
counting and ordering. Because the facts are known, a summary a model writes
can be checked fact by fact (`check_summary`), beyond word overlap.

A diary and its summary, in the chat template, must fit the foundation model's
rows (32 tokens): so a diary is short, 3 or 4 days, 2 places. People are split
like the questions' entities: fine-tuning sees diaries of the `train` people,
learning rates are chosen on the `dev` people, and the `held_out` people's
diaries are read only in the final test.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from learnjax.data import world
from learnjax.data.questions import Example

PLACES = tuple(a.place for a in world.ACTIVITIES)
COUNT_WORDS = {1: "once", 2: "twice", 3: "three times"}
ENTRIES = (3, 4)  # days in a diary
PROMPT = "summarise: "
HELD_OUT_PEOPLE, DEV_PEOPLE = 6, 4


@dataclass(frozen=True)
class Diary:
    person: str
    entries: tuple[tuple[str, str], ...]  # (day, place), in the week's order

    @property
    def text(self) -> str:
        return f"{self.person}: " + ", ".join(f"{day} {place}" for day, place in self.entries) + "."

    def visits(self) -> dict[str, int]:
        """Each place and how often it was visited, the more visited first (ties: the first visited first)."""
        counts = Counter(place for _, place in self.entries)
        return dict(sorted(counts.items(), key=lambda item: -item[1]))  # sorted is stable: first visited first on ties

    @property
    def summary(self) -> str:
        clauses = [f"the {place} {COUNT_WORDS[n]}" for place, n in self.visits().items()]
        return f"{self.person} went to {' and '.join(clauses)}."

    def example(self) -> Example:
        return Example(PROMPT + self.text, self.summary)


@lru_cache(maxsize=4)
def people_splits(seed: int = 0) -> dict[str, tuple[str, ...]]:
    """The `train`, `dev` and `held_out` people, disjoint."""
    names = sorted(name for name, _ in world.NAMES)
    random.Random(seed).shuffle(names)
    return {
        "held_out": tuple(names[:HELD_OUT_PEOPLE]),
        "dev": tuple(names[HELD_OUT_PEOPLE : HELD_OUT_PEOPLE + DEV_PEOPLE]),
        "train": tuple(names[HELD_OUT_PEOPLE + DEV_PEOPLE :]),
    }


def random_diary(rng: random.Random, person: str) -> Diary:
    """A diary of 3 or 4 days of the week at 2 places, each place visited at least once."""
    n = rng.choice(ENTRIES)
    days = sorted(rng.sample(range(len(world.DAYS)), n))
    places = rng.sample(PLACES, 2)
    visited = places + [rng.choice(places) for _ in range(n - 2)]
    rng.shuffle(visited)
    return Diary(person, tuple((world.DAYS[d], p) for d, p in zip(days, visited)))


def diaries(split: str, n: int, seed: int = 0) -> list[Diary]:
    """`n` diaries of the split's people, drawn with `seed`."""
    if split not in ("train", "dev", "held_out"):
        raise ValueError(f"split must be train, dev or held_out; got {split!r}")
    people = people_splits()[split]
    rng = random.Random(f"{split}-{seed}")
    return [random_diary(rng, rng.choice(people)) for _ in range(n)]


def training_examples(n: int, seed: int = 0) -> list[Example]:
    """`n` fine-tuning examples: diaries of the train people and their summaries."""
    return [d.example() for d in diaries("train", n, seed)]


def leaked(training: list[Example], split: str = "held_out") -> list[str]:
    """The prompts of `training` that are about a person of `split`: none, when
    the split is kept out of fine-tuning."""
    people = set(people_splits()[split])
    return [e.prompt for e in training if e.prompt.removeprefix(PROMPT).split(":")[0] in people]


_CLAUSE = re.compile(r"the (\S+) (once|twice|three times)$")


def read_summary(text: str) -> tuple[str, list[tuple[str, int]]] | None:
    """The person and the visits (place, count) a summary in the rule's form
    states, in its order, or None where it is not in that form."""
    match = re.fullmatch(r"(\S+) went to (.+)\.", text.strip())
    if not match:
        return None
    stated = []
    for clause in match.group(2).split(" and "):
        found = _CLAUSE.fullmatch(clause)
        if not found:
            return None
        stated.append((found.group(1), next(n for n, word in COUNT_WORDS.items() if word == found.group(2))))
    return match.group(1), stated


FAULTS = ("unreadable", "wrong person", "invented place", "missing place", "repeated place", "wrong count")


def check_summary(diary: Diary, text: str) -> dict:
    """Every fact the summary states checked against the diary: `faults` lists
    what is wrong (`FAULTS`); `week_right` when every visit and count is right
    (the person aside), `correct` when nothing is wrong. The order of the
    places is wording, not fact: it is not checked."""
    read = read_summary(text)
    if read is None:
        return {"correct": False, "week_right": False, "faults": ["unreadable"]}
    person, stated = read
    truth = diary.visits()
    places = [place for place, _ in stated]
    faults = [
        fault
        for fault, found in (
            ("wrong person", person != diary.person),
            ("invented place", bool(set(places) - set(truth))),
            ("missing place", bool(set(truth) - set(places))),
            ("repeated place", len(set(places)) < len(places)),
            ("wrong count", any(place in truth and n != truth[place] for place, n in stated)),
        )
        if found
    ]
    return {"correct": not faults, "week_right": not set(faults) - {"wrong person"}, "faults": faults}
