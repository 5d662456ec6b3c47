"""The unlabeled corpus: everyday sentences about a small world, plus messages.

The corpus is generated from a seed, so every run of the project reads the same
"broad reading" without downloading anything. Sentences state the facts of
`learnjax.data.world` in many frames; messages are personal chats and promotional
offers (the same kinds of text the fine-tuning section later labels).

Some (frame, fact) combinations are held out of the corpus: the cloze sentences
built from them test whether pre-training learned the fact, not the sentence.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from learnjax.data import messages, phrasing, world
from learnjax.data.phrasing import HOW_OFTEN, Subject, agree, article, be, sentence
from learnjax.text.tokenizer import MASK, split_words

WHEN_PAST = ("today", "yesterday", "this morning", "last night", "after work", "on saturday", "at the weekend", "last week")

# Frames about what people do at places. Each takes (rng, subject, activity).
ActivityFrame = Callable[[random.Random, Subject, world.Activity], str]
ACTIVITY_FRAMES: dict[str, ActivityFrame] = {
    "went_and": lambda r, s, a: f"{r.choice(WHEN_PAST)} {s.text} went to the {a.place} and {a.verb.past} {a.thing}.",
    "past_at": lambda r, s, a: f"{s.text} {a.verb.past} {a.thing} at the {a.place} {r.choice(WHEN_PAST)}.",
    "met_at": lambda r, s, a: f"we met at the {a.place} and {a.verb.past} {a.thing} together.",
    "goes_to": lambda r, s, a: f"{s.text} {r.choice(HOW_OFTEN)} {'goes' if s.third_person else 'go'} to the {a.place} to {a.verb.base} {a.thing}.",
    "at_the": lambda r, s, a: f"at the {a.place}, {s.text} {r.choice(HOW_OFTEN)} {agree(a.verb, s)} {a.thing}.",
    "every_day": lambda r, s, a: f"every {r.choice(world.DAYS)} {s.text} {agree(a.verb, s)} {a.thing} at the {a.place}.",
    "wants_to": lambda r, s, a: (
        f"{s.text} {'wants' if s.third_person else 'want'} to {a.verb.base} {a.thing}, so {s.pronoun} {be(Subject(s.pronoun, s.pronoun, s.third_person))} going to the {a.place}."
    ),
    "if_you": lambda r, s, a: f"if you want to {a.verb.base} {a.thing}, go to the {a.place}.",
    "likes_because": lambda r, s, a: (
        f"{s.text} {'likes' if s.third_person else 'like'} the {a.place} because {s.pronoun} can {a.verb.base} {a.thing} there."
    ),
    "question": lambda r, s, a: f"shall we go to the {a.place} and {a.verb.base} {a.thing} later?",
}

JobFrame = Callable[[random.Random, Subject, str, str], str]
JOB_FRAMES: dict[str, JobFrame] = {
    "is_a": lambda r, s, j, p: f"{s.text} is a {j} and works at the {p}.",
    "because": lambda r, s, j, p: f"{s.text} works at the {p} because {s.pronoun} is a {j}.",
    "the_job": lambda r, s, j, p: f"the {j} went to the {p} early {r.choice(('this morning', 'today', 'on monday'))}.",
    "every_day": lambda r, s, j, p: f"every day the {j} drives to the {p}.",
}

FactFrame = Callable[[random.Random, Subject], str]


def _meal(r: random.Random, s: Subject) -> str:
    meal = r.choice(world.MEALS)
    return r.choice(
        (
            f"{meal.at}, {s.text} {agree(world.EAT, s)} {meal.food}.",
            f"every {meal.when}, {s.text} {'has' if s.third_person else 'have'} {meal.food}.",
            f"{s.text} ate {meal.food} {meal.at}.",
        )
    )


def _weather(r: random.Random, s: Subject) -> str:
    condition, verb, item = r.choice(world.WEATHER)
    if r.random() < 0.5:
        return f"when it is {condition}, {s.text} {agree(verb, s)} {article(item)}{item}."
    return f"it was {condition} yesterday, so {s.text} {verb.past} {article(item)}{item}."


def _day(r: random.Random, s: Subject) -> str:
    i = r.randrange(len(world.DAYS))
    day, after = world.DAYS[i], world.DAYS[(i + 1) % len(world.DAYS)]
    return r.choice(
        (
            f"the day after {day} is {after}.",
            f"after {day} comes {after}.",
            f"{s.text} {'works' if s.third_person else 'work'} on {day} and rests on {after}.",
        )
    )


def _colour(r: random.Random, s: Subject) -> str:
    thing, colour = r.choice(world.COLOURS)
    return r.choice(
        (
            f"the {thing} is {colour}.",
            f"{s.text} saw a {colour} {thing}.",
            f"a ripe {thing} looks {colour}." if thing in world.RIPENING else f"the {thing} looks {colour} today.",
        )
    )


FACT_FRAMES: tuple[FactFrame, ...] = (_meal, _weather, _day, _colour)


# Held out of the corpus: activity frame by place, and job frame by job.
HELD_OUT_ACTIVITIES = {(list(ACTIVITY_FRAMES)[(i * 3) % len(ACTIVITY_FRAMES)], a.place) for i, a in enumerate(world.ACTIVITIES)}
HELD_OUT_JOBS = {(list(JOB_FRAMES)[i % len(JOB_FRAMES)], job) for i, (job, _) in enumerate(world.JOBS)}


def _world_sentence(rng: random.Random) -> str:
    roll = rng.random()
    subject = phrasing.subject(rng)
    if roll < 0.6:
        while True:
            frame_name = rng.choice(list(ACTIVITY_FRAMES))
            activity = rng.choice(world.ACTIVITIES)
            if (frame_name, activity.place) not in HELD_OUT_ACTIVITIES:
                return sentence(ACTIVITY_FRAMES[frame_name](rng, subject, activity))
    if roll < 0.75:
        if not subject.third_person:
            subject = phrasing.named_subject(rng)
        while True:
            frame_name = rng.choice(list(JOB_FRAMES))
            job, place = rng.choice(world.JOBS)
            if (frame_name, job) not in HELD_OUT_JOBS:
                return sentence(JOB_FRAMES[frame_name](rng, subject, job, place))
    return sentence(rng.choice(FACT_FRAMES)(rng, subject))


def iter_corpus(n_texts: int, seed: int = 0, message_share: float = 0.2) -> Iterator[str]:
    """Yields `n_texts` unlabeled texts: world sentences and, with probability
    `message_share`, a chat or promotional message."""
    if n_texts < 0:
        raise ValueError(f"n_texts must be >= 0, got {n_texts}")
    if not 0 <= message_share <= 1:
        raise ValueError(f"message_share must be in [0, 1], got {message_share}")
    rng = random.Random(seed)
    held_out_messages = set(messages.held_out_texts())
    produced = 0
    while produced < n_texts:
        if rng.random() < message_share:
            text = messages.random_message(rng, rng.random() < 0.5, split="any").text
            if text in held_out_messages:
                continue
        else:
            text = _world_sentence(rng)
        produced += 1
        yield text


def build_corpus(n_texts: int = 40_000, seed: int = 0) -> list[str]:
    """The default unlabeled corpus (a list of texts). `learnjax.data.questions.with_faq`
    replaces a share of it by question-and-answer text."""
    return list(iter_corpus(n_texts, seed))


@dataclass(frozen=True)
class Cloze:
    """A sentence with one word hidden, and the word that belongs there."""

    text: str  # contains one [MASK]
    answer: str
    probes: str  # the regularity it checks


def _mask_word(sentence: str, word: str) -> str:
    words = sentence.split(" ")
    stripped = [w.strip(".,?!").lower() for w in words]
    if stripped.count(word) != 1:
        raise AssertionError(f"{word!r} must occur once in {sentence!r}")
    i = stripped.index(word)
    words[i] = words[i].lower().replace(word, MASK)
    return " ".join(words)


def cloze_sentences() -> list[Cloze]:
    """Held-out cloze sentences: one per place and one per job, in the (frame,
    fact) combinations that the corpus never contains."""
    return _held_out_clozes(random.Random(1234))


def _held_out_clozes(rng: random.Random, per_fact: int = 1, frames: dict[str, tuple[str, ...]] | None = None) -> list[Cloze]:
    """`per_fact` clozes for each held-out (frame, fact) combination, of the
    `frames` given per kind ("activity", "job"; default: all)."""
    items = []
    for frame_name, place in sorted(HELD_OUT_ACTIVITIES):
        if frames is None or frame_name in frames["activity"]:
            activity = next(a for a in world.ACTIVITIES if a.place == place)
            for _ in range(per_fact):
                text = sentence(ACTIVITY_FRAMES[frame_name](rng, phrasing.named_subject(rng), activity))
                items.append(Cloze(_mask_word(text, activity.thing), activity.thing, f"what people do at the {place}"))
    for frame_name, job in sorted(HELD_OUT_JOBS):
        if frames is None or frame_name in frames["job"]:
            place = dict(world.JOBS)[job]
            for _ in range(per_fact):
                text = sentence(JOB_FRAMES[frame_name](rng, phrasing.named_subject(rng), job, place))
                items.append(Cloze(_mask_word(text, place), place, f"where a {job} works"))
    return items


@dataclass(frozen=True)
class GrammarProbe:
    """A sentence whose hidden word must have the right grammatical form."""

    text: str
    accepted: frozenset[str]  # every word of the right class and form
    probes: str


def grammar_probes(corpus: list[str] | None = None) -> list[GrammarProbe]:
    """Subject-verb agreement probes: "At the pub, Maria often [MASK] beer."

    The hidden word must be a verb that agrees with the subject: a third-person
    form after a singular subject ("drinks"), the base form after a plural one
    ("drink"); a past form ("drank") agrees with both. Any verb of the world
    counts, so the check measures grammar, not facts. Probes that occur
    verbatim in `corpus` are dropped.
    """
    third = frozenset(a.verb.third for a in world.ACTIVITIES)
    base = frozenset(a.verb.base for a in world.ACTIVITIES)
    past = frozenset(a.verb.past for a in world.ACTIVITIES)
    rng = random.Random(99)
    seen = set(corpus or ())
    probes = []
    for i, activity in enumerate(world.ACTIVITIES):
        for plural in (False, True):
            if plural:
                subject = Subject(f"my {world.RELATIVES_PLURAL[i % len(world.RELATIVES_PLURAL)]}", "they", False)
            else:
                name, pronoun = world.NAMES[i % len(world.NAMES)]
                subject = Subject(name.capitalize(), pronoun, True)
            text = sentence(ACTIVITY_FRAMES["at_the"](rng, subject, activity))
            if text in seen:
                continue
            verb = agree(activity.verb, subject)
            masked = text.replace(f" {verb} {activity.thing}", f" {MASK} {activity.thing}")
            accepted = (base if plural else third) | past
            probes.append(GrammarProbe(masked, accepted, "plural subject" if plural else "singular subject"))
    return probes


def corpus_statistics(texts: list[str]) -> dict[str, int]:
    """Counts of texts, word tokens and distinct words."""
    words = [w for t in texts for w in split_words(t)]
    return {"texts": len(texts), "tokens": len(words), "vocabulary": len(set(words))}


# Frames that name the place (or the job) before the word that states the fact:
# a model reading left to right can know the answer when it gets there.
FACT_BEFORE_ANSWER = {
    "activity": ("went_and", "met_at", "goes_to", "at_the", "likes_because", "question"),
    "job": ("is_a", "the_job", "every_day"),
}


@dataclass(frozen=True)
class NextWordProbe:
    """The start of a held-out sentence, and the word that comes next."""

    prompt: str
    answer: str
    probes: str


def next_word_probes(per_fact: int = 3) -> list[NextWordProbe]:
    """Held-out prompts for a next-word model: the (frame, fact) combinations the
    corpus leaves out, in the frames that name the place or job before the word
    that states the fact, cut just before that word; `per_fact` subjects each."""
    probes = {}  # by prompt: frames without a subject repeat themselves
    for item in _held_out_clozes(random.Random(4321), per_fact, FACT_BEFORE_ANSWER):
        prompt = item.text.split(MASK)[0].rstrip()
        probes.setdefault(prompt, NextWordProbe(prompt, item.answer, item.probes))
    return list(probes.values())
