"""How the generated texts say things: who does something, the verb's form that
agrees with them, "a"/"an", and a sentence's capital letter. The corpus, the
facts' prompts and the questions all write through these, so a sentence reads
the same wherever it comes from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from learnjax.data import world

HOW_OFTEN = ("usually", "often", "always", "sometimes")


@dataclass(frozen=True)
class Subject:
    text: str
    pronoun: str
    third_person: bool  # "she drinks" vs "they drink"


def named_subject(rng: random.Random) -> Subject:
    """A person of the world by name: "Maria" (she)."""
    name, pronoun = rng.choice(world.NAMES)
    return Subject(name.capitalize(), pronoun, True)


def subject(rng: random.Random, allow_i: bool = True) -> Subject:
    """Someone doing something: a name, a relative or relatives, I, we or they."""
    roll = rng.random()
    if roll < 0.45:
        return named_subject(rng)
    if roll < 0.6:
        relative = rng.choice(world.RELATIVES_SINGULAR)
        pronoun = {"sister": "she", "aunt": "she", "brother": "he", "uncle": "he"}.get(relative) or rng.choice(("she", "he"))
        return Subject(f"my {relative}", pronoun, True)
    if roll < 0.75:
        return Subject(f"my {rng.choice(world.RELATIVES_PLURAL)}", "they", False)
    if allow_i and roll < 0.85:
        return Subject("I", "I", False)
    return rng.choice((Subject("we", "we", False), Subject("they", "they", False)))


def agree(verb: world.Verb, subject: Subject) -> str:
    """The present tense of `verb` that agrees with `subject`: "drinks" or "drink"."""
    return verb.third if subject.third_person else verb.base


_THIRD = {v.base: v.third for v in [a.verb for a in world.ACTIVITIES] + [verb for _, verb, _ in world.WEATHER]}


def third_person(base: str) -> str:
    """The third person of one of the world's verbs, from its base form: "drink" -> "drinks"."""
    return _THIRD[base]


def be(subject: Subject) -> str:
    """ "am", "is" or "are" for `subject`."""
    return {"I": "am"}.get(subject.text, "is" if subject.third_person else "are")


def article(word: str) -> str:
    """ "a ", "an " or nothing (a plural) before `word`."""
    return "" if word.endswith("s") else "an " if word[0] in "aeiou" else "a "


def sentence(text: str) -> str:
    """`text` with single spaces and a capital first letter."""
    text = " ".join(text.split())
    return text[0].upper() + text[1:]
