"""The recipe chosen from one's own corpus when the command is not told one
(`corpus_recipe`): row length from the texts' lengths, steps from the
corpus's size, what was given kept, and a reason for each choice."""

import pytest

from learnjax.training.pretraining import CORPUS_PASSES, CorpusShape, PretrainRecipe, corpus_recipe


def test_the_shape_of_a_corpus():
    assert CorpusShape.measure(iter(["ab", "abcd", "abcdef"])) == CorpusShape(3, 12, 4)
    with pytest.raises(ValueError, match="the corpus is empty"):
        CorpusShape.measure([])


@pytest.mark.parametrize(("median_characters", "max_len"), [(60, 32), (400, 32), (1000, 64), (1100, 64), (3000, 128), (50_000, 128)])
def test_rows_grow_with_the_texts_length(median_characters, max_len):
    recipe, why = corpus_recipe(CorpusShape(5000, 5000 * median_characters, median_characters))
    assert recipe.max_len == max_len and f"rows of {max_len} tokens" in why["max_len"]


def test_steps_read_the_corpus_a_few_times():
    mail = CorpusShape(4000, 5_000_000, 1100)  # about 1.25 million tokens
    recipe, why = corpus_recipe(mail)
    assert recipe.tokenizer == "subword"
    assert recipe.steps * recipe.batch_size * recipe.max_len == pytest.approx(CORPUS_PASSES * 5_000_000 / 4, rel=0.01)
    assert f"{recipe.steps} steps" in why["steps"]
    doubled, _ = corpus_recipe(CorpusShape(8000, 10_000_000, 1100))
    assert doubled.steps == pytest.approx(2 * recipe.steps, abs=1)
    assert corpus_recipe(CorpusShape(10, 1000, 100))[0].steps == 300  # a tiny corpus: still enough steps to learn


def test_what_is_given_is_kept_and_not_explained():
    recipe, why = corpus_recipe(CorpusShape(4000, 5_000_000, 1100), max_len=16, steps=7, d_model=32, d_ff=64, tokenizer="word")
    assert recipe == PretrainRecipe(max_len=16, steps=7, d_model=32, d_ff=64, tokenizer="word") and why == {}
    recipe, why = corpus_recipe(CorpusShape(4000, 5_000_000, 1100), batch_size=32)
    assert recipe.steps * 32 * recipe.max_len == pytest.approx(CORPUS_PASSES * 5_000_000 / 4, rel=0.01) and "of 32 rows" in why["steps"]
