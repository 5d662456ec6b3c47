"""Fine-tuning: the pre-trained model beats learning from the same few labels alone."""

import jax
import numpy as np
import pytest
from flax import nnx

from learnjax import experiments, foundation_model, messages
from learnjax.finetuning import FinetuneSettings, TextClassifier, build_classifier, finetune


@pytest.fixture(scope="module")
def result():
    return experiments.label_efficiency()


def _mean(result, mode, n):
    return next(r["mean"] for r in result["rows"] if r["mode"] == mode and r["n_labels"] == n)


def test_every_mode_got_the_same_search(result):
    for row in result["rows"]:
        assert set(row["dev_by_learning_rate"]) == {str(lr) for lr in result["learning_rates"]}
        assert len(row["scores"]) == len(result["seeds"]) >= 3


def test_the_chosen_rate_is_the_best_on_dev(result):
    for row in result["rows"]:
        dev, loss = row["dev_by_learning_rate"], row["dev_loss_by_learning_rate"]
        assert str(row["learning_rate"]) == max(dev, key=lambda lr: (dev[lr], -loss[lr])), row


def test_fine_tuning_beats_scratch_with_32_labels(result):
    assert _mean(result, "full", 32) >= _mean(result, "scratch", 32) + 0.10


def test_gap_narrows_as_labels_grow(result):
    sizes = sorted({r["n_labels"] for r in result["rows"]})
    gaps = [_mean(result, "full", n) - _mean(result, "scratch", n) for n in sizes]
    assert gaps[-1] < max(gaps[:3]), gaps


def test_scratch_with_all_labels_reaches_95_percent(result):
    assert _mean(result, "scratch", max(experiments.LABEL_SIZES)) >= 0.95


def test_probe_trains_only_the_head():
    foundation = foundation_model()
    model, trainable = build_classifier(foundation, "probe")
    trained = nnx.state(model, trainable)
    assert set(nnx.to_pure_dict(trained)) == {"head"}
    before = nnx.to_pure_dict(nnx.state(model.encoder, nnx.Param))
    splits = messages.labeled_splits()
    items = splits["pool"][:16]
    classifier = finetune(foundation, [m.text for m in items], [m.label for m in items], mode="probe",
                          settings=FinetuneSettings(steps=5), label_names=messages.LABEL_NAMES)
    after = nnx.to_pure_dict(nnx.state(classifier.model.encoder, nnx.Param))
    jax.tree.map(np.testing.assert_array_equal, before, after)


def test_fine_tuning_leaves_the_foundation_unchanged():
    foundation = foundation_model()
    before = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(foundation.model)))
    items = messages.labeled_splits()["pool"][:16]
    finetune(foundation, [m.text for m in items], [m.label for m in items], settings=FinetuneSettings(steps=5), label_names=messages.LABEL_NAMES)
    jax.tree.map(np.testing.assert_array_equal, before, nnx.to_pure_dict(nnx.state(foundation.model)))


def test_classifier_save_load_round_trip(tmp_path):
    foundation = foundation_model()
    items = messages.labeled_splits()["pool"][:32]
    classifier = finetune(foundation, [m.text for m in items], [messages.LABEL_NAMES[m.label] for m in items], settings=FinetuneSettings(steps=20))
    classifier.save(tmp_path / "clf")
    loaded = TextClassifier.load(tmp_path / "clf")
    texts = [m.text for m in messages.labeled_splits()["test"][:8]]
    np.testing.assert_array_equal(loaded.predict_proba(texts), classifier.predict_proba(texts))
    assert loaded.labels == ("not spam", "spam")
