"""The recipe chosen from one's own corpus when the command is not told one
(`corpus_recipe`): row length from the texts' lengths, steps from the
corpus's size, what was given kept, and a reason for each choice."""

import pytest

from learnjax.training.recipe import CORPUS_PASSES, CORPUS_VOCAB_SIZE, MIN_STEPS, CorpusShape, PretrainRecipe, corpus_recipe


def test_the_shape_of_a_corpus():
    assert CorpusShape.measure(iter(["ab", "abcd", "abcdef"])) == CorpusShape(3, 12, 4)
    with pytest.raises(ValueError, match="the corpus is empty"):
        CorpusShape.measure([])


@pytest.mark.parametrize(("median_characters", "max_len"), [(60, 32), (400, 32), (1000, 64), (1100, 64), (3000, 128), (50_000, 128)])
def test_rows_grow_with_the_texts_length(median_characters, max_len):
    recipe, why = corpus_recipe(CorpusShape(5000, 5000 * median_characters, median_characters))
    assert recipe.max_len == max_len and f"rows of {max_len} tokens" in why["max_len"]


def test_steps_read_the_corpus_a_few_times():
    mail = CorpusShape(16000, 20_000_000, 1100)  # about 5 million tokens
    recipe, why = corpus_recipe(mail)
    assert recipe.tokenizer == "subword"
    assert recipe.steps * recipe.batch_size * recipe.max_len == pytest.approx(CORPUS_PASSES * 20_000_000 / 4, rel=0.01)
    assert f"{recipe.steps} steps" in why["steps"]
    doubled, _ = corpus_recipe(CorpusShape(32000, 40_000_000, 1100))
    assert doubled.steps == pytest.approx(2 * recipe.steps, abs=1)
    assert corpus_recipe(CorpusShape(10, 1000, 100))[0].steps == MIN_STEPS  # a tiny corpus: still enough steps to learn


def test_a_small_corpus_gets_past_learning_word_frequencies_alone():
    """1 MB of mail: 300 steps left the model at the tokens' unigram entropy, its
    features no better than a random model's; 1,200 learned which words go together."""
    recipe, why = corpus_recipe(CorpusShape(900, 1_000_000, 1100))
    assert recipe.steps >= 1000 and f"(at least {MIN_STEPS})" in why["steps"]


def test_five_megabytes_of_mail_get_the_measured_recipe():
    """The recipe `benchmarks.mail_finetuning` measured on 5 MB of generated mail
    (3,520 messages, median 1,119 characters): 2,000 subword pieces, rows of 64,
    2,000 steps. 8,000 pieces and 1,000 steps took about as long and left the
    fine-tuned classifier below the one trained from scratch."""
    recipe, why = corpus_recipe(CorpusShape(3520, 5_000_000, 1119))
    assert (recipe.tokenizer, recipe.vocab_size, recipe.max_len, recipe.steps) == ("subword", 2000, 64, 2000)
    assert f"a vocabulary of {CORPUS_VOCAB_SIZE} pieces" in why["vocab_size"]


def test_a_vocabulary_given_or_of_words_is_not_chosen():
    recipe, why = corpus_recipe(CorpusShape(3520, 5_000_000, 1119), vocab_size=8000)
    assert recipe.vocab_size == 8000 and "vocab_size" not in why
    recipe, why = corpus_recipe(CorpusShape(3520, 5_000_000, 1119), tokenizer="word")  # at most this many words: the cap stays
    assert recipe.vocab_size == PretrainRecipe().vocab_size and "vocab_size" not in why


def test_what_is_given_is_kept_and_not_explained():
    recipe, why = corpus_recipe(CorpusShape(4000, 5_000_000, 1100), max_len=16, steps=7, d_model=32, d_ff=64, tokenizer="word")
    assert recipe == PretrainRecipe(max_len=16, steps=7, d_model=32, d_ff=64, tokenizer="word") and why == {}
    recipe, why = corpus_recipe(CorpusShape(8000, 10_000_000, 1100), batch_size=32)
    assert recipe.steps * 32 * recipe.max_len == pytest.approx(CORPUS_PASSES * 10_000_000 / 4, rel=0.01) and "of 32 rows" in why["steps"]


def test_the_pretrain_command_chooses_what_it_is_not_told_and_says_so(tmp_path, capsys):
    import json

    from learnjax.cli import main

    words = "the meeting moved to thursday please send the report before noon and call me after lunch".split()
    (tmp_path / "mail.txt").write_text("".join(" ".join(words[(i + j) % len(words)] for j in range(180)) + "\n" for i in range(40)))
    small = ["--steps", "2", "--batch-size", "4", "--d-model", "16", "--layers", "1", "--heads", "2", "--vocab-size", "200"]
    assert main(["pretrain", "--corpus", str(tmp_path / "mail.txt"), *small, "--out", str(tmp_path / "a"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["max_len"] == 64 and result["steps"] == 2  # texts of about 1,000 characters; the steps as told
    assert list(result["chosen_from_corpus"]) == ["max_len"] and "rows of 64 tokens" in result["chosen_from_corpus"]["max_len"]
    assert main(["pretrain", "--corpus", str(tmp_path / "mail.txt"), *small, "--max-len", "16", "--out", str(tmp_path / "b")]) == 0
    assert "chosen from the corpus" not in capsys.readouterr().err  # nothing left to choose
    assert main(["pretrain", "--corpus", str(tmp_path / "mail.txt"), *small[2:], "--out", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr()
    assert "chosen from the corpus" not in printed.out  # a note on stderr: stdout holds the result
    printed = printed.err
    assert "chosen from the corpus" in printed and "rows of 64 tokens" in printed and f"{MIN_STEPS} steps of 4 rows" in printed
