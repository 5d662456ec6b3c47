"""Texts longer than a row: pre-training reads all of a text as consecutive
windows (nothing dropped or cut); fine-tuning and classification read every
window by default, the text's logits the mean of its windows' (or the first
window alone)."""

import jax
import numpy as np
import pytest

from learnjax.text.tokenizer import CLS_ID, END_ID, PAD_ID, Tokenizer
from learnjax.training.finetuning import FinetuneSettings, TextClassifier, finetune, training_rows
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


@pytest.fixture(scope="module")
def foundation():
    return pretrain(PretrainRecipe(max_len=16, steps=5, batch_size=4, d_model=16, n_layers=1, d_ff=32), [LONG, "a bird sang."] * 10)


def test_a_classifier_reads_the_first_window_or_the_mean_of_all_windows_logits(foundation):
    classifier = finetune(foundation, ["the cat sat.", "a bird sang in the tree."] * 4, ["cat", "bird"] * 4, settings=FinetuneSettings(steps=3))
    texts = [LONG, "the dog sat."]
    first, average = classifier.predict_proba(texts, windows="first"), classifier.predict_proba(texts, windows="average")
    rows, owners = classifier.tokenizer.encode_windows(texts, 16)
    logits = np.stack([np.asarray(classifier.model(rows[i : i + 1]))[0] for i in range(len(rows))])
    softmax = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()  # noqa: E731
    assert np.allclose(first[0], softmax(logits[0]), atol=1e-5)  # the first window
    assert np.allclose(average[0], softmax(logits[owners == 0].mean(axis=0)), atol=1e-5)  # the mean of every window's logits
    assert np.allclose(average[1], first[1], atol=1e-6) and np.allclose(average.sum(axis=1), 1)  # a short text is one window
    assert classifier.classify(texts, windows="average")[0][0] == classifier.labels[int(average[0].argmax())]
    with pytest.raises(ValueError, match="windows must be one of first, average"):
        classifier.predict_proba(texts, windows="all")


def test_the_model_averages_a_texts_windows_logits_and_leaves_padding_windows_out(foundation):
    """Training reads windows through the model's (B, W, T) call: it must give
    what classification computes, whatever padding a batch adds."""
    classifier = finetune(foundation, ["the cat sat.", "a bird sang."] * 4, ["cat", "bird"] * 4, settings=FinetuneSettings(steps=2))
    texts = [LONG, "the dog sat.", ""]
    stacked = training_rows(classifier.tokenizer, texts, 16, FinetuneSettings(max_windows=8))
    assert stacked.shape == (3, 8, 16)  # 5 windows, rounded up to 8
    pooled = np.asarray(jax.nn.softmax(classifier.model(stacked), axis=-1))
    assert np.allclose(pooled, classifier.predict_proba(texts, windows="average"), atol=1e-5)


def test_training_rows_keep_every_window_up_to_the_limit():
    tokenizer = Tokenizer.from_texts([LONG])
    stacked = training_rows(tokenizer, [LONG, "the cat"], 16, FinetuneSettings())
    assert stacked.shape == (2, 8, 16)
    assert [t for row in stacked[0] for t in row[1:] if t != PAD_ID] == tokenizer.encode(LONG)
    assert (stacked[:, :, 0] == CLS_ID).all() and (stacked[1, 1:, 1:] == PAD_ID).all()
    assert training_rows(tokenizer, [LONG], 16, FinetuneSettings(max_windows=2)).shape == (1, 2, 16)  # the first two windows
    assert training_rows(tokenizer, [LONG], 16, FinetuneSettings(windows="first")).shape == (1, 16)
    short = training_rows(tokenizer, ["the cat", "a bird"], 16, FinetuneSettings())
    assert (short == tokenizer.encode_batch(["the cat", "a bird"], 16)).all()  # one window each: plain rows
    with pytest.raises(ValueError, match="max_windows=0 must be a positive whole number"):
        FinetuneSettings(max_windows=0)


def _tell_apart_at_the_end(windows: str):
    """Texts whose label shows only after their first window."""
    start = " ".join(WORDS)  # 19 words: more than a row of 16
    texts = [f"{start} {end}" for end in ("cat cat cat", "bird bird bird")] * 6
    labels = ["cat", "bird"] * 6
    foundation = pretrain(PretrainRecipe(max_len=16, steps=10, batch_size=4, d_model=16, n_layers=1, d_ff=32), texts)
    classifier = finetune(foundation, texts, labels, settings=FinetuneSettings(steps=40, learning_rate=5e-3, windows=windows))
    return classifier, [label for label, _ in classifier.classify([f"{start} cat cat", f"{start} bird bird"])]


@pytest.fixture(scope="module")
def trained_on_every_window():
    return _tell_apart_at_the_end(FinetuneSettings().windows)


def test_fine_tuning_learns_from_every_window_by_default_and_classifies_alike(trained_on_every_window, tmp_path):
    classifier, predicted = trained_on_every_window
    assert classifier.windows == "average" and predicted == ["cat", "bird"]
    classifier.save(tmp_path / "c")
    assert TextClassifier.load(tmp_path / "c").windows == "average"  # read as it was trained, once loaded too


def test_the_evaluate_command_reads_texts_as_the_classifier_was_trained(trained_on_every_window, tmp_path, capsys):
    import json

    from learnjax.cli import main

    classifier, _ = trained_on_every_window
    classifier.save(tmp_path / "c")
    start = " ".join(WORDS)
    (tmp_path / "test.jsonl").write_text("".join(json.dumps({"text": f"{start} {w} {w}", "label": w}) + "\n" for w in ("cat", "bird")))
    accuracy = {}
    for extra in ([], ["--windows", "first"]):
        capsys.readouterr()
        assert main(["evaluate", "--model", str(tmp_path / "c"), "--test", str(tmp_path / "test.jsonl"), "--json", *extra]) == 0
        accuracy[tuple(extra)] = json.loads(capsys.readouterr().out)["accuracy"]
    assert accuracy == {(): 1.0, ("--windows", "first"): 0.5}


def test_a_classifier_trained_on_first_windows_sees_no_difference():
    classifier, predicted = _tell_apart_at_the_end("first")
    assert classifier.windows == "first" and len(set(predicted)) == 1
