"""Summarisation: the diaries and their rule summaries, the fact check, the
held-out people, and the measured claims of the Other tasks page."""

import random

import pytest

from learnjax.data import diaries
from learnjax.data.diaries import Diary, check_summary, read_summary

WEEK = Diary("tom", (("monday", "café"), ("wednesday", "zoo"), ("thursday", "zoo"), ("friday", "café"), ("sunday", "zoo")))


def test_the_summary_counts_every_place_and_puts_the_more_visited_first():
    assert WEEK.visits() == {"zoo": 3, "café": 2}
    assert WEEK.summary == "tom went to the zoo three times and the café twice."
    tie = Diary("anna", (("monday", "pub"), ("tuesday", "zoo"), ("friday", "zoo"), ("sunday", "pub")))
    assert tie.summary == "anna went to the pub twice and the zoo twice."  # a tie: the first visited first
    assert WEEK.example().prompt == "summarise: tom: monday café, wednesday zoo, thursday zoo, friday café, sunday zoo."


def test_no_sentence_of_a_diary_is_its_summary():
    for diary in diaries.diaries("train", 200):
        assert diary.summary not in diary.text and len(diary.visits()) == 2 and len(diary.entries) in diaries.ENTRIES
        assert [d for d, _ in diary.entries] == sorted((d for d, _ in diary.entries), key=diaries.world.DAYS.index)


@pytest.mark.parametrize("summary, faults", [
    ("tom went to the zoo three times and the café twice.", []),
    ("tom went to the café twice and the zoo three times.", []),  # the order is wording, not a fact
    ("ben went to the zoo three times and the café twice.", ["wrong person"]),
    ("tom went to the zoo three times and the pub twice.", ["invented place", "missing place"]),
    ("tom went to the zoo three times.", ["missing place"]),
    ("tom went to the zoo three times and the zoo twice.", ["missing place", "repeated place", "wrong count"]),
    ("tom went to the zoo twice and the café twice.", ["wrong count"]),
    ("tom went to the zoo and the café.", ["unreadable"]),
    ("", ["unreadable"]),
])
def test_the_fact_check_finds_each_planted_fault(summary, faults):
    checked = check_summary(WEEK, summary)
    assert checked["faults"] == faults
    assert checked["correct"] == (not faults)
    assert checked["week_right"] == (not set(faults) - {"wrong person"})


def test_every_rule_summary_reads_back_as_its_diary():
    rng = random.Random(3)
    for _ in range(200):
        diary = diaries.random_diary(rng, "leo")
        assert read_summary(diary.summary) == ("leo", list(diary.visits().items()))
        assert check_summary(diary, diary.summary)["correct"]


def test_held_out_people_are_never_in_the_fine_tuning_examples():
    splits = diaries.people_splits()
    assert not set(splits["train"]) & set(splits["held_out"]) and not set(splits["dev"]) & set(splits["held_out"])
    assert not set(splits["train"]) & set(splits["dev"])
    for seed in (0, 1, 2):
        assert diaries.leaked(diaries.training_examples(256, seed)) == []
        assert diaries.leaked(diaries.training_examples(256, seed), "dev") == []
    # Planted: one held-out person's diary among the training examples is found.
    planted = diaries.diaries("held_out", 1)[0].example()
    assert diaries.leaked([*diaries.training_examples(16), planted]) == [planted.prompt]


def test_a_split_that_does_not_exist_is_refused_by_name():
    with pytest.raises(ValueError, match="'test'"):
        diaries.diaries("test", 3)


def test_every_diary_and_summary_fits_the_foundation_rows_with_the_new_words_known():
    from learnjax.data.questions import chat_rows
    from learnjax.experiments.summarisation import summarising_foundation
    from learnjax.text.tokenizer import UNK_ID

    foundation = summarising_foundation()
    examples = [d.example() for split in ("train", "dev", "held_out") for d in diaries.diaries(split, 300)]
    tokens, _, _ = chat_rows(foundation.tokenizer, examples, foundation.model.config.max_len)  # raises if one is too long
    assert not (tokens == UNK_ID).any()


@pytest.mark.slow
def test_the_measured_summaries_word_overlap_is_high_while_most_state_a_false_fact():
    """The page's claim: ROUGE-L credits summaries in the right form whose facts
    are wrong; the fact check does not."""
    from learnjax.experiments.summarisation import MODES, summarisation

    result = summarisation()
    assert {(r["mode"], r["n_examples"]) for r in result["rows"]} == {(m, n) for m in MODES for n in result["sizes"]}
    for row in result["rows"]:
        assert row["rouge_l"] > 0.5 and row["week_right"] < 0.5, row
    largest = [r for r in result["rows"] if r["n_examples"] == result["sizes"][-1]]
    smallest = [r for r in result["rows"] if r["n_examples"] == result["sizes"][0]]
    for big, small in zip(largest, smallest):  # more examples, more summaries right
        assert big["week_right"] > small["week_right"] and big["rouge_l"] > small["rouge_l"]
    assert all(r["faults"]["wrong person"] > 0.9 for r in largest)  # neither copies a name it never wrote
    for t in result["transcripts"]:  # the transcripts' verdicts are the fact check's
        for mode in MODES:
            assert check_summary(next(d for d in diaries.diaries("held_out", 128) if d.text == t["diary"]),
                                 t[mode]["summary"])["faults"] == t[mode]["faults"]
