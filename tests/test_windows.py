"""Texts longer than a row: pre-training reads all of a text as consecutive
windows (nothing dropped or cut); classification reads the first window, or
averages over all of them."""

import numpy as np
import pytest

from learnjax.text.tokenizer import CLS_ID, END_ID, PAD_ID, Tokenizer
from learnjax.training.finetuning import FinetuneSettings, finetune
from learnjax.training.pretraining import corpus_rows, pretrain
from learnjax.training.recipe import PretrainRecipe

WORDS = "the cat sat on the mat and the dog sat on the rug while a bird sang in the tree".split()
LONG = " ".join(WORDS * 3) + " again"  # 61 words


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_texts([LONG])


@pytest.mark.parametrize("end", [False, True])
def test_packing_keeps_every_token_of_a_long_text_in_consecutive_windows(tokenizer, end):
    tokens, segments = tokenizer.encode_packed([LONG, "the cat sat.", LONG], max_len=16, end=end)
    expected = [CLS_ID, *tokenizer.encode(LONG), *([END_ID] if end else [])]
    kept = tokens[segments > 0].tolist()  # row by row, in order
    assert kept == expected + [CLS_ID, *tokenizer.encode("the cat sat."), *([END_ID] if end else [])] + expected
    assert ((segments == 0) == (tokens == PAD_ID)).all()


def test_pretraining_rows_hold_every_token_of_the_corpus(tokenizer):
    texts = [LONG, "the cat sat on the mat."] * 5
    recipe = PretrainRecipe(max_len=16, steps=1, batch_size=4, d_model=16, n_layers=1, d_ff=32)
    tok, tokens, segments = corpus_rows(recipe, texts)
    assert (segments > 0).sum() == sum(len(tok.encode(t)) + 1 for t in texts)


def test_windows_of_a_text_start_with_cls_and_together_hold_all_of_it(tokenizer):
    rows, owners = tokenizer.encode_windows([LONG, "", "the cat"], max_len=16)
    assert owners.tolist() == [0] * 5 + [1, 2]  # 61 words: 15 + 15 + 15 + 15 + 1
    assert (rows[:, 0] == CLS_ID).all()
    assert [t for row in rows[:5] for t in row[1:] if t != PAD_ID] == tokenizer.encode(LONG)
    assert rows[5].tolist() == [CLS_ID] + [PAD_ID] * 15


def test_a_classifier_reads_the_first_window_or_the_mean_over_all_windows():
    foundation = pretrain(PretrainRecipe(max_len=16, steps=5, batch_size=4, d_model=16, n_layers=1, d_ff=32), [LONG, "a bird sang."] * 10)
    classifier = finetune(foundation, ["the cat sat.", "a bird sang in the tree."] * 4, ["cat", "bird"] * 4, settings=FinetuneSettings(steps=3))
    texts = [LONG, "the dog sat."]
    first, average = classifier.predict_proba(texts), classifier.predict_proba(texts, windows="average")
    rows, owners = classifier.tokenizer.encode_windows(texts, 16)
    each = np.stack([classifier.predict_proba([classifier.tokenizer.decode(r[1:])])[0] for r in rows])
    assert np.allclose(first[0], each[0], atol=1e-6)  # the first window
    assert np.allclose(average[0], each[owners == 0].mean(axis=0), atol=1e-6)
    assert np.allclose(average[1], first[1]) and np.allclose(average.sum(axis=1), 1)  # a short text is one window
    assert classifier.classify(texts, windows="average")[0][0] == classifier.labels[int(average[0].argmax())]
    with pytest.raises(ValueError, match="windows must be one of first, average"):
        classifier.predict_proba(texts, windows="all")
