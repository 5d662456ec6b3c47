"""Preferences and rewards: the unknown entities, DPO against a frozen
reference, and the measured claims of the Preferences and rewards page."""

import random

import pytest

from learnjax.data import corpus, questions, unknowns, world
from learnjax.data.facts import world_facts
from learnjax.training.pretraining import MIXED_RECIPE, NEXT_WORD_RECIPE

# The unknown entities.


def test_unknown_entities_are_words_of_the_corpus_with_no_fact_of_their_kind():
    facts = {(f.kind, f.entity) for f in world_facts()}
    texts = corpus.build_corpus(MIXED_RECIPE.n_texts, MIXED_RECIPE.corpus_seed, MIXED_RECIPE.faq_share)
    words = {w for t in texts for w in t.lower().replace(".", " ").replace(",", " ").split()}
    for fact in unknowns.unknown_facts():
        assert (fact.kind, fact.entity) not in facts, fact
        assert fact.entity in words, fact  # heard of: a word of the vocabulary, not [UNK]


@pytest.mark.parametrize("recipe", [NEXT_WORD_RECIPE, MIXED_RECIPE], ids=["plain", "mixed"])
def test_no_fact_of_an_unknown_entity_leaks_into_the_corpus(recipe):
    assert unknowns.leaks(corpus.build_corpus(recipe.n_texts, recipe.corpus_seed, recipe.faq_share)) == []


def test_a_leaked_fact_is_found():
    assert unknowns.leaks(["The umbrella is black.", "We met at the farm and caught fish together.", "I like tea."]) == [
        "The umbrella is black.", "We met at the farm and caught fish together."]


def test_an_unknown_given_a_colour_in_the_world_leaks_into_the_corpus(monkeypatch):
    monkeypatch.setattr(world, "COLOURS", (*world.COLOURS, ("umbrella", "black")))
    assert unknowns.leaks(corpus.build_corpus(4000, seed=0))


def test_unknown_splits_are_disjoint_cover_every_kind_and_abstain():
    splits = unknowns.unknown_splits()
    assert not splits["train"] & splits["dev"] and not splits["train"] & splits["held_out"] and not splits["dev"] & splits["held_out"]
    for split in splits:
        assert {kind for kind, _ in splits[split]} == set(unknowns.UNKNOWN), split
        assert {q.response for q in unknowns.unknown_questions(split)} == {unknowns.ABSTENTION}


def test_abstentions_in_supervised_data_are_about_train_unknowns_only():
    examples = unknowns.with_abstentions(questions.training_examples(256), 8)
    abstaining = [e for e in examples if e.response == unknowns.ABSTENTION]
    assert len(examples) == 256 and len(abstaining) == 8
    train = {entity for _, entity in unknowns.unknown_splits()["train"]}
    assert {e.fact.entity for e in abstaining} <= train


def test_a_made_up_answer_is_a_fact_of_the_kind_the_world_does_not_hold():
    rng = random.Random(0)
    for example in questions.questions("train")[:30] + unknowns.unknown_questions("train"):
        made_up = unknowns.made_up_answer(example, rng)
        assert made_up != example.response and made_up != unknowns.ABSTENTION
        assert unknowns.verdict(made_up, example) == "wrong"
    known = questions.questions("train")[0]
    assert unknowns.verdict(known.response, known) == "right"
    assert unknowns.verdict(unknowns.ABSTENTION, known) == "abstain"
