"""Supervised learning from scratch: a spam filter learned from labeled messages only."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import optax
from flax import nnx

from learnjax.data import messages
from learnjax.models.transformer import BagOfWordsClassifier
from learnjax.storage.progress import History
from learnjax.text.tokenizer import Tokenizer
from learnjax.training.loops import accuracy, train_classifier

MAX_LEN = 32


@dataclass
class LabeledArrays:
    tokens: np.ndarray  # (N, MAX_LEN) int32
    labels: np.ndarray  # (N,) int32


def to_arrays(tokenizer: Tokenizer, items: list[messages.Message] | tuple[messages.Message, ...], max_len: int = MAX_LEN) -> LabeledArrays:
    return LabeledArrays(tokenizer.encode_batch([m.text for m in items], max_len), np.array([m.label for m in items], dtype=np.int32))


def pool_tokenizer() -> Tokenizer:
    """Vocabulary of the labeled pool's texts: all a from-scratch model ever reads."""
    return Tokenizer.from_texts(m.text for m in messages.labeled_splits()["pool"])


@dataclass
class SupervisedRun:
    model: BagOfWordsClassifier
    tokenizer: Tokenizer
    history: History
    train_accuracy: float
    test_accuracy: float
    n_labels: int


@functools.lru_cache(maxsize=8)
def _adamw(learning_rate: float) -> optax.GradientTransformation:
    """One transform per rate: it is part of the compiled step's static structure,
    so runs with the same rate share one program."""
    return optax.adamw(learning_rate, weight_decay=1e-4)


def _spam_filter_run(n_labels: int, seed: int, tokenizer: Tokenizer, learning_rate: float):
    labeled = messages.balanced_subset(messages.labeled_splits()["pool"], n_labels, seed)
    train = to_arrays(tokenizer, labeled)
    model = BagOfWordsClassifier(len(tokenizer), rngs=nnx.Rngs(seed))
    return model, nnx.Optimizer(model, _adamw(learning_rate), wrt=nnx.Param), train


def train_spam_filter(
    n_labels: int | None = None, *, seed: int = 0, steps: int = 300, batch_size: int = 32, learning_rate: float = 1e-2
) -> SupervisedRun:
    """Trains a bag-of-words classifier on `n_labels` labeled messages (all by default)
    and measures its accuracy on them and on the held-out test messages."""
    splits = messages.labeled_splits()
    n_labels = len(splits["pool"]) if n_labels is None else n_labels
    tokenizer = pool_tokenizer()
    model, optimizer, train = _spam_filter_run(n_labels, seed, tokenizer, learning_rate)
    test = to_arrays(tokenizer, splits["test"])
    history = train_classifier(model, optimizer, train.tokens, train.labels, steps=steps, batch_size=batch_size, seed=seed)
    return SupervisedRun(
        model,
        tokenizer,
        history,
        train_accuracy=accuracy(model, train.tokens, train.labels),
        test_accuracy=accuracy(model, test.tokens, test.labels),
        n_labels=n_labels,
    )


def label_learning_curve(sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512), seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict]:
    """Held-out accuracy of the spam filter against the number of labeled examples.
    Every run shares one compiled step (one optimizer transform for every run)."""
    rows = []
    for n in sizes:
        scores = [train_spam_filter(n, seed=s).test_accuracy for s in seeds]
        rows.append({"n_labels": n, "mean": float(np.mean(scores)), "std": float(np.std(scores)), "scores": scores})
    return rows
