"""The specialist assistant: the clinic's questions, their splits, and the
measured claim of the Other tasks page (the specialist answers what only the
notes taught it; the general assistant, tuned alike, cannot)."""

import pytest

from learnjax.data import clinic
from learnjax.data.clinic import TREATMENTS, clinic_notes, clinic_questions, condition_splits


def test_each_fact_is_asked_both_ways_with_the_answer_in_the_notes_words():
    questions = clinic_questions("held_out")
    assert len(questions) == len(condition_splits()["held_out"]) * sum(map(len, clinic.QUESTIONS.values()))
    fever = [q for q in clinic_questions(next(s for s, c in condition_splits().items() if "fever" in c)) if "fever" in q.prompt
             or "paracetamol" in q.prompt]
    assert {(q.prompt, q.response) for q in fever} >= {("what do you take for a fever?", "they get paracetamol."),
                                                       ("what is paracetamol for?", "it helps against a fever.")}


def test_held_out_conditions_are_never_in_the_tuning_set():
    from learnjax.experiments.specialist import tuning_examples

    splits = condition_splits()
    assert sorted(c for s in splits.values() for c in s) == sorted(TREATMENTS)  # disjoint, and every condition in one
    for seed in (0, 1, 2):
        assert clinic.leaked(tuning_examples(seed)) == [] and clinic.leaked(tuning_examples(seed), "dev") == []
    # Planted: a held-out question among the tuning examples is found.
    planted = clinic_questions("held_out")[4]
    assert clinic.leaked([*tuning_examples(), planted]) == [planted.prompt]


def test_every_held_out_fact_is_stated_in_the_notes_and_only_there():
    from learnjax.data import corpus

    notes = clinic_notes()
    held_out = clinic.clinic_facts(condition_splits()["held_out"])
    assert all(clinic.stated_in(notes, fact) for fact in held_out)
    # Planted: notes without one held-out condition no longer state its facts.
    condition = condition_splits()["held_out"][0]
    without = [n for n in notes if condition not in n]
    assert [clinic.stated_in(without, f) for f in held_out if clinic.condition_of(f) == condition] == [False, False]
    general = set(" ".join(corpus.build_corpus(5000)).lower().replace(".", " ").replace(",", " ").split())
    assert not {w for c in condition_splits()["held_out"] for w in (c, TREATMENTS[c])} & general


def test_a_split_that_does_not_exist_is_refused_by_name():
    with pytest.raises(ValueError, match="'test'"):
        clinic_questions("test")


@pytest.mark.slow
def test_the_specialist_answers_what_only_the_notes_taught_and_the_general_assistant_cannot():
    """The page's claim, on the cached run: over every seed the specialist gets
    a good share of the held-out clinic questions right, the general assistant
    almost none at any learning rate, though it learned the trained ones."""
    from learnjax.experiments.specialist import MODELS, specialist

    result = specialist()
    assert result["leaked"] == [] and all(result["notes_in_which_held_out_facts_appear"])
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == set(MODELS)
    special, general = rows["specialist"], rows["general"]
    assert min(special["held_out_contains_by_seed"]) >= 0.3, special
    assert max(general["held_out_contains_by_seed"]) <= 0.1 and max(general["dev_contains"].values()) <= 0.1, general
    assert general["trained_contains"] >= 0.9 and general["world_contains"] >= 0.5  # a working assistant, not a broken one
    # Every word of every clinic question and answer is one both models have.
    from learnjax.training.instruction_tuning import ASSISTANT_RECIPE
    from learnjax.training.pretraining import foundation_model

    vocabulary = set(foundation_model(ASSISTANT_RECIPE).tokenizer.vocab) | set(result["new_words"])
    said = " ".join(f"{q.prompt} {q.response}" for split in ("train", "dev", "held_out") for q in clinic_questions(split))
    assert set(said.replace("?", " ").replace(".", " ").split()) <= vocabulary
    for t in result["transcripts"]:  # the transcripts' verdicts are the answers'
        expected = next(q for q in clinic_questions("held_out") if q.prompt == t["question"])
        for model in MODELS:
            assert t[model]["right"] == (expected.fact.answer in t[model]["answer"].replace(".", " ").split())
