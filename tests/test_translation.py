"""Translation: the pairs and their splits, the two foundations' corpora, and
the measured claims of the Other tasks page."""

import pytest

from learnjax.data import spanish, translation
from learnjax.data.questions import Example


def test_a_pair_is_a_statement_in_english_and_in_spanish():
    pair = translation.pair(spanish.Statement("parents", "café", past=True))
    assert pair == Example("translate: my parents drank coffee at the café.", "mis padres bebieron café en la cafetería.")


def test_every_statement_is_in_one_split_and_the_new_word_facts_only_in_theirs():
    splits = translation.statement_splits()
    every = [s for split in translation.SPLITS for s in splits[split]]
    assert sorted(every, key=repr) == sorted(spanish.all_statements(), key=repr)  # each in exactly one split
    assert {s.fact for s in splits["new_words"]} == set(translation.NEW_WORD_FACTS)
    assert len(splits["train"]) >= 256 and len(splits["held_out"]) >= 100


def test_held_out_and_new_word_sentences_are_never_in_the_tuning_pairs():
    for seed in (0, 1, 2):
        training = translation.training_examples(256, seed)
        for split in ("dev", "held_out", "new_words"):
            assert translation.leaked(training, split) == []
    # Planted: one held-out sentence among the tuning pairs is found.
    planted = translation.examples("held_out")[3]
    assert translation.leaked([*translation.training_examples(16), planted]) == [planted.prompt]


def test_the_new_words_are_in_no_other_pair_and_in_the_bilingual_corpus():
    new = translation.new_words()
    assert {"museo", "cuadros", "plátano", "cereza"} <= set(new)
    other_pairs = [e.response for split in ("train", "dev", "held_out") for e in translation.examples(split)]
    assert not set(new) & translation.words(other_pairs)
    corpus = translation.corpus("bilingual", 40_000)
    assert set(new) <= translation.words(corpus)
    for fact in translation.NEW_WORD_FACTS:  # the corpus speaks of each in both languages, in different sentences
        said = [s for s in translation.statement_splits()["new_words"] if s.fact == fact]
        assert any(spanish.english(s) in corpus for s in said) and any(spanish.spanish(s) in corpus for s in said)
    # Planted: a new-word sentence among the other pairs shares its words with them.
    assert set(new) & translation.words([*other_pairs, translation.examples("new_words")[0].response])


def test_the_bilingual_corpus_holds_no_translated_pair_and_the_english_one_no_spanish():
    english, bilingual = (translation.corpus(language, 40_000) for language in translation.LANGUAGES)
    assert spanish.parallel_pairs(bilingual) == []
    spanish_only = translation.words(spanish.spanish(s) for s in spanish.all_statements()) - translation.words(
        spanish.english(s) for s in spanish.all_statements()
    )
    assert not translation.words(english) & spanish_only and len(translation.words(bilingual) & spanish_only) > 50
    # Planted: the Spanish of one of its English sentences, leaked into the corpus, is found.
    statement = next(s for s in spanish.all_statements() if spanish.english(s) in bilingual)
    assert spanish.parallel_pairs([*bilingual, spanish.spanish(statement)]) == [(spanish.english(statement), spanish.spanish(statement))]


def differences(foundations: dict) -> list[str]:
    """What differs between the two foundations, of what must not: their size,
    vocabulary and training tokens; their corpora's token counts by more than one text."""
    english, bilingual = foundations["english"], foundations["bilingual"]
    found = [key for key in ("parameters", "vocabulary", "training_tokens") if english[key] != bilingual[key]]
    return found + (["corpus_tokens"] if abs(english["corpus_tokens"] - bilingual["corpus_tokens"]) > 20 else [])


def test_the_corpora_have_the_same_token_count():
    counts = [translation.token_count(translation.corpus(language, 40_000)) for language in translation.LANGUAGES]
    assert all(40_000 <= c < 40_020 for c in counts)


def test_a_language_or_split_that_does_not_exist_is_refused_by_name():
    with pytest.raises(ValueError, match="'french'"):
        translation.corpus("french", 100)
    with pytest.raises(ValueError, match="'test'"):
        translation.examples("test")


@pytest.mark.slow
def test_the_two_foundations_differ_only_in_what_they_read():
    """The page's comparison is fair: one recipe, one vocabulary, as many
    tokens read and in the corpus, no translated pair; planted differences are found."""
    from learnjax.experiments.translation import translation_experiment, translation_foundation

    built = translation_experiment()["foundations"]
    assert differences(built) == [] and all(b["parallel_pairs"] == 0 for b in built.values())
    english, bilingual = (translation_foundation(language) for language in translation.LANGUAGES)
    assert english.recipe == bilingual.recipe and english.tokenizer.vocab == bilingual.tokenizer.vocab
    # Planted: a bilingual corpus of another budget, or a longer training, is found.
    assert differences({**built, "bilingual": {**built["bilingual"], "corpus_tokens": built["english"]["corpus_tokens"] + 500}}) == ["corpus_tokens"]
    assert differences({**built, "english": {**built["english"], "training_tokens": 2 * built["english"]["training_tokens"]}}) == ["training_tokens"]


def _result_with(result: dict, change) -> dict:
    return {**result, "rows": [{**r, **change(r)} for r in result["rows"]]}


@pytest.mark.slow
def test_the_page_says_what_the_measured_result_says():
    """The sentences of the page come from the result: planted results that
    say otherwise change them."""
    from learnjax.experiments.translation import MODES, comparison, translation_experiment

    result = translation_experiment()
    assert {(r["mode"], r["n_pairs"]) for r in result["rows"]} == {(m, n) for m in MODES for n in result["sizes"]}
    chrf = {(r["mode"], r["n_pairs"]): r["chrf"] for r in result["rows"]}
    helps = all(chrf["bilingual", n] > max(chrf["english", n], chrf["scratch", n]) for n in result["sizes"])
    said = comparison(result)
    assert ("does not make a few pairs enough" in said) == (not helps)
    for n in result["sizes"]:
        assert f"{chrf['scratch', n]:.0f}" in said or n not in (result["sizes"][0], result["sizes"][-1])
    never = max(r["new_words_key_word"] for r in result["rows"]) == 0
    assert ("No model, at any number of pairs, wrote the Spanish noun" in said) == never
    # Planted: the bilingual foundation far ahead everywhere; one new noun written.
    ahead = _result_with(result, lambda r: {"chrf": 100.0} if r["mode"] == "bilingual" else {})
    assert "Reading both languages helps here" in comparison(ahead)
    wrote = _result_with(result, lambda r: {"new_words_key_word": 0.5})
    assert "No model" not in comparison(wrote) and "50% (bilingual foundation)" in comparison(wrote)


@pytest.mark.slow
def test_more_pairs_translate_better_and_the_transcripts_are_the_pairs():
    from learnjax.experiments.translation import MODES, translation_experiment

    result = translation_experiment()
    for mode in MODES:
        rows = [r for r in result["rows"] if r["mode"] == mode]
        assert [r["n_pairs"] for r in rows] == result["sizes"]
        assert rows[-1]["chrf"] > rows[0]["chrf"] + 20 and rows[-1]["exact"] > rows[0]["exact"], rows
    references = {e.prompt.removeprefix(translation.PROMPT): (e.response, split) for split in ("held_out", "new_words")
                  for e in translation.examples(split)}
    for t in result["transcripts"]:
        assert references[t["source"]] == (t["reference"], "new_words" if t["new_words"] else "held_out")
    assert result["new_words"] == translation.new_words()
