"""Supervised learning: the spam filter learns from labels, and labels matter."""

import numpy as np
import pytest

from learnjax import experiments, messages
from learnjax.supervised import train_spam_filter


def test_splits_are_balanced_and_disjoint():
    splits = messages.labeled_splits()
    texts = {name: {m.text for m in items} for name, items in splits.items()}
    assert not texts["pool"] & texts["test"] and not texts["pool"] & texts["dev"]
    for items in splits.values():
        assert sum(m.label for m in items) * 2 == len(items)


def test_test_set_uses_only_rare_topic_words():
    rare = {w for label in messages.TOPICS for w in messages.TOPICS[label][messages.N_COMMON:]}
    common = {w for label in messages.TOPICS for w in messages.TOPICS[label][: messages.N_COMMON]}
    for m in messages.labeled_splits()["test"]:
        words = set(m.text.lower().replace(".", " ").replace(",", " ").replace("?", " ").replace("!", " ").split())
        assert words & rare and not words & common, m.text


def test_filter_trained_on_all_labels_generalises():
    run = train_spam_filter()
    assert run.train_accuracy == 1.0
    assert run.test_accuracy >= 0.95
    assert run.history.loss[-1] < run.history.loss[0] / 10


def test_more_labels_give_better_held_out_accuracy():
    curve = experiments.supervised_label_curve()
    means = [row["mean"] for row in curve]
    assert [row["n_labels"] for row in curve] == list(experiments.LABEL_SIZES)
    assert means[0] < 0.75, "with 8 labels the rare test words are unknown"
    assert means[-1] >= 0.95
    assert all(later >= earlier - 0.03 for earlier, later in zip(means, means[1:])), means


def test_labels_must_match_rows():
    from flax import nnx
    import optax
    from learnjax.model import BagOfWordsClassifier
    from learnjax.training import train_classifier

    model = BagOfWordsClassifier(10, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    with pytest.raises(ValueError, match="3 token rows but 2 labels"):
        train_classifier(model, optimizer, np.ones((3, 4), np.int32), np.array([0, 1]), steps=1, batch_size=2)
