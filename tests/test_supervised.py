"""Supervised learning: the spam filter learns from labels, and labels matter."""

import numpy as np
import pytest

from learnjax import experiments
from learnjax.data import messages
from learnjax.experiments.spam_filter import train_spam_filter


def test_splits_are_balanced_and_disjoint():
    """No message is in two splits: what the dev set chooses, the test set then measures fresh."""
    splits = messages.labeled_splits()
    texts = {name: {m.text for m in items} for name, items in splits.items()}
    assert not texts["pool"] & texts["test"] and not texts["pool"] & texts["dev"]
    assert not texts["dev"] & texts["test"]
    assert {name: len(texts[name]) for name in texts} == {name: len(items) for name, items in splits.items()}  # no repeats within one
    for items in splits.values():
        assert sum(m.label for m in items) * 2 == len(items)


def test_test_set_uses_only_rare_topic_words():
    rare = {w for label in messages.TOPICS for w in messages.TOPICS[label][messages.N_COMMON:]}
    common = {w for label in messages.TOPICS for w in messages.TOPICS[label][: messages.N_COMMON]}
    for m in messages.labeled_splits()["test"]:
        words = set(m.text.lower().replace(".", " ").replace(",", " ").replace("?", " ").replace("!", " ").split())
        assert words & rare and not words & common, m.text


def test_the_pool_mostly_says_the_common_topic_words():
    """The supervised page: the pool mostly says "prize" and "dinner", the test set "jackpot" and "barbecue"."""
    from learnjax.text.tokenizer import split_words

    common = {w for label in messages.TOPICS for w in messages.TOPICS[label][: messages.N_COMMON]}
    topic = {w for label in messages.TOPICS for w in messages.TOPICS[label]}
    words = [w for m in messages.labeled_splits()["pool"] for w in split_words(m.text) if w in topic]
    assert sum(w in common for w in words) >= 2 / 3 * len(words)


def test_filter_trained_on_all_labels_generalises():
    run = train_spam_filter()
    assert run.train_accuracy == 1.0
    assert run.test_accuracy >= 0.95
    assert run.history.loss[-1] < run.history.loss[0] / 10


@pytest.mark.slow
def test_more_labels_give_better_held_out_accuracy():
    curve = experiments.supervised_label_curve()
    means = [row["mean"] for row in curve]
    assert [row["n_labels"] for row in curve] == list(experiments.LABEL_SIZES)
    assert means[0] < 0.75, "with 8 labels the rare test words are unknown"
    assert means[-1] >= 0.95
    assert all(later >= earlier - 0.03 for earlier, later in zip(means, means[1:])), means


def test_labels_must_match_rows():
    import optax
    from flax import nnx

    from learnjax.models.transformer import BagOfWordsClassifier
    from learnjax.training.loops import train_classifier

    model = BagOfWordsClassifier(10, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    with pytest.raises(ValueError, match="3 token rows but 2 labels"):
        train_classifier(model, optimizer, np.ones((3, 4), np.int32), np.array([0, 1]), steps=1, batch_size=2)


def test_the_loop_runs_exactly_the_documented_step_once_per_batch():
    """`train_classifier` runs up to STEPS_PER_CALL steps per compiled call; a
    run whose length is not a multiple of it must end where calling
    `supervised_step` once per batch ends, loss for loss."""
    import jax
    import optax
    from flax import nnx

    from learnjax.models.transformer import BagOfWordsClassifier
    from learnjax.training.loops import STEPS_PER_CALL, batch_indices, train_classifier
    from learnjax.training.steps import supervised_step

    rng = np.random.default_rng(0)
    tokens = rng.integers(4, 50, size=(40, 12)).astype(np.int32)
    labels = rng.integers(0, 2, size=40).astype(np.int32)
    steps = STEPS_PER_CALL + 3

    def fresh():
        model = BagOfWordsClassifier(50, rngs=nnx.Rngs(0))
        return model, nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    model, optimizer = fresh()
    history = train_classifier(model, optimizer, tokens, labels, steps=steps, batch_size=8, seed=3)
    reference, reference_optimizer = fresh()
    losses = [float(supervised_step(reference, reference_optimizer, tokens[i], labels[i])[0])
              for i in batch_indices(len(tokens), 8, steps, 3)]
    assert len(history.loss) == steps and np.allclose(history.loss, losses, rtol=1e-5)
    for ours, theirs in zip(jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(reference))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert int(optimizer.step[...]) == steps
