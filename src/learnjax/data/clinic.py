"""A small clinic's notes, and questions about them (no JAX).

The clinic's one regularity: each condition has its treatment (`TREATMENTS`).
The notes state it in several frames (`clinic_notes`), the cloze sentences in
frames the notes never use (`clinic_cloze`), and the questions ask it both ways
("what does the clinic give for a fever?", "what is paracetamol for?"). None
of these words is in the general corpus: a fact of the clinic is in its notes
and nowhere else.

The questions are split by condition, like the world's questions by entity:
instruction tuning sees questions about the `train` conditions, learning
rates are chosen on the `dev` ones, and the `held_out` conditions are asked
about only in the final test.
"""

from __future__ import annotations

import random
from functools import lru_cache

from learnjax.data.corpus import Cloze
from learnjax.data.facts import Fact, article
from learnjax.data.questions import Example

TREATMENTS = {
    "fever": "paracetamol",
    "infection": "antibiotics",
    "fracture": "plaster",
    "cut": "stitches",
    "allergy": "antihistamines",
    "cough": "syrup",
    "burn": "ointment",
    "migraine": "painkillers",
}
PATIENTS = ("Anna", "Tom", "Omar", "Yuki", "Diego", "Grace", "Ravi", "Lucy", "Ben", "Sara", "the patient", "a child", "an old man")
STAFF = ("the doctor", "the nurse", "the pharmacist", "the clinic")

# Frames of the clinic's notes, and held-out frames that only the cloze sentences use.
NOTE_FRAMES = (
    "{staff} gave {patient} {treatment} for the {condition}.",
    "for {a_condition}, {staff} usually brings {treatment}.",
    "{patient} has {a_condition}, so {staff} hands over {treatment}.",
    "patients with {a_condition} get {treatment} at the clinic.",
    "{treatment} helps against {a_condition}, says {staff}.",
    "today {patient} came in with {a_condition} and went home with {treatment}.",
)
CLOZE_FRAMES = (
    "with {a_condition}, {patient} went home with [MASK].",
    "for the {condition}, {staff} gave {patient} [MASK].",
)


def _filled(frame: str, rng: random.Random, condition: str) -> str:
    text = frame.format(
        staff=rng.choice(STAFF),
        patient=rng.choice(PATIENTS),
        condition=condition,
        a_condition=f"{article(condition)}{condition}",
        treatment=TREATMENTS[condition],
    )
    return text[0].upper() + text[1:]


def clinic_notes(n: int = 1500, seed: int = 0) -> list[str]:
    """`n` notes of a small clinic, in `NOTE_FRAMES`, drawn with `seed`."""
    rng = random.Random(seed)
    notes = []
    for _ in range(n):
        condition = rng.choice(sorted(TREATMENTS))
        notes.append(_filled(rng.choice(NOTE_FRAMES), rng, condition))
    return notes


def clinic_cloze(per_condition: int = 4, seed: int = 1) -> list[Cloze]:
    """Held-out cloze sentences: frames the notes never use, the treatment hidden."""
    rng = random.Random(seed)
    items = []
    for condition, treatment in sorted(TREATMENTS.items()):
        for i in range(per_condition):
            items.append(
                Cloze(_filled(CLOZE_FRAMES[i % len(CLOZE_FRAMES)], rng, condition), treatment, "which treatment the clinic gives for a condition")
            )
    return items


# Each fact asked both ways, in several phrasings: the treatment for a condition
# ("treatment" facts) and the condition a treatment is for ("use" facts). The
# answer follows the words it follows in the notes ("get", "helps against");
# every word is one the general corpus or the notes have (none unknown).
QUESTIONS = {
    "treatment": ("what do you take for {a_entity}?", "what helps against {a_entity}?", "what do patients with {a_entity} get?"),
    "use": ("what is {entity} for?", "what is {entity} good for?", "when do you need {entity}?"),
}
HELD_OUT_CONDITIONS, DEV_CONDITIONS = 3, 2


@lru_cache(maxsize=4)
def condition_splits(seed: int = 0) -> dict[str, tuple[str, ...]]:
    """The `train`, `dev` and `held_out` conditions, disjoint."""
    conditions = sorted(TREATMENTS)
    random.Random(seed).shuffle(conditions)
    held, dev = HELD_OUT_CONDITIONS, HELD_OUT_CONDITIONS + DEV_CONDITIONS
    return {"held_out": tuple(conditions[:held]), "dev": tuple(conditions[held:dev]), "train": tuple(conditions[dev:])}


def clinic_facts(conditions: tuple[str, ...]) -> list[Fact]:
    """Both facts of each condition: its treatment, and what the treatment is for."""
    return [fact for c in conditions for fact in (Fact("treatment", c, TREATMENTS[c]), Fact("use", TREATMENTS[c], c))]


def answer_text(fact: Fact) -> str:
    if fact.kind == "treatment":
        return f"they get {fact.answer}."
    return f"it helps against {article(fact.answer)}{fact.answer}."


def clinic_questions(split: str) -> list[Example]:
    """Every phrasing of both questions about each of the split's conditions."""
    if split not in ("train", "dev", "held_out"):
        raise ValueError(f"split must be train, dev or held_out; got {split!r}")
    return [
        Example(q.format(entity=f.entity, a_entity=f"{article(f.entity)}{f.entity}"), answer_text(f), f)
        for f in clinic_facts(condition_splits()[split])
        for q in QUESTIONS[f.kind]
    ]


def condition_of(fact: Fact) -> str:
    return fact.entity if fact.kind == "treatment" else fact.answer


def leaked(examples: list[Example], split: str = "held_out") -> list[str]:
    """The prompts of `examples` about a condition of `split`, or its
    treatment: none, when the split is kept out of tuning."""
    words = {w for c in condition_splits()[split] for w in (c, TREATMENTS[c])}
    return [e.prompt for e in examples if words & set(e.prompt.rstrip("?").split())]


def stated_in(notes: list[str], fact: Fact) -> bool:
    """Whether some note names both the condition and its treatment."""
    condition = condition_of(fact)
    return any({condition, TREATMENTS[condition]} <= set(note.lower().replace(",", " ").replace(".", " ").split()) for note in notes)
