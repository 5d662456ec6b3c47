"""A classifier at work on files: labels for many texts, read and written in
batches, and how well it does on a labeled test file.

`classify_in_batches` streams texts through a `TextClassifier` a batch at a
time (a large file is never held whole); `write_predictions` writes its
results as CSV, TSV or JSON Lines; `evaluate` scores a labeled test set:
accuracy, per-class precision, recall and F1, and the confusion matrix.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TextIO

import numpy as np
from tqdm import tqdm  # plain text bars, as training's

from learnjax.training.finetuning import TextClassifier

BATCH_SIZE = 256
OUTPUT_FORMATS = ("csv", "tsv", "jsonl")


def classify_in_batches(
    classifier: TextClassifier, texts: Iterable[str], *, batch_size: int = BATCH_SIZE, windows: str | None = None, progress: bool = False
) -> Iterator[tuple[str, np.ndarray]]:
    """(text, probability of each label) for each text, in order, computed
    `batch_size` texts at a time; `progress` shows a bar on a terminal."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}")
    texts = iter(texts)
    with tqdm(desc="classifying", unit=" texts", disable=None if progress else True, leave=False, mininterval=0.5) as bar:
        while batch := list(itertools.islice(texts, batch_size)):
            yield from zip(batch, classifier.predict_proba(batch, windows))
            bar.update(len(batch))


def write_predictions(results: Iterable[tuple[str, np.ndarray]], labels: tuple[str, ...], out: TextIO, fmt: str = "csv") -> int:
    """Writes each (text, probabilities) as a record: the text, its most likely
    label, and the probability of every label (CSV/TSV columns `p(<label>)`,
    a JSON object `probabilities` in JSON Lines). Returns how many were written."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}; got {fmt!r}")
    writer = csv.writer(out, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n") if fmt != "jsonl" else None
    if writer:
        writer.writerow(["text", "label", *(f"p({label})" for label in labels)])
    count = 0
    for count, (text, probs) in enumerate(results, 1):
        label = labels[int(np.argmax(probs))]
        if writer:
            writer.writerow([text, label, *(f"{p:.6f}" for p in probs)])
        else:
            record = {"text": text, "label": label, "probabilities": {name: round(float(p), 6) for name, p in zip(labels, probs)}}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return count


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int  # test examples of this class


@dataclass(frozen=True)
class Evaluation:
    """Scores of a classifier on labeled examples. `confusion[i][j]` counts the
    examples of label i predicted as label j."""

    labels: tuple[str, ...]
    accuracy: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    n: int

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "labels": list(self.labels),
            "per_class": {label: asdict(s) for label, s in self.per_class.items()},
            "confusion": self.confusion,
        }

    def report(self) -> str:
        """The scores as plain text: accuracy, a line per class, the confusion matrix."""
        width = max(len("label"), *map(len, self.labels))
        lines = [f"accuracy {self.accuracy:.1%} on {self.n} examples", "", f"{'label':<{width}}  precision  recall     f1  support"]
        for label, s in self.per_class.items():
            lines.append(f"{label:<{width}}  {s.precision:9.1%}  {s.recall:6.1%}  {s.f1:5.1%}  {s.support:7d}")
        cell = max(5, *(len(str(n)) for row in self.confusion for n in row), *map(len, self.labels))
        lines += [
            "",
            "confusion matrix (rows: true label, columns: predicted)",
            f"{'':<{width}}  " + "  ".join(f"{label:>{cell}}" for label in self.labels),
        ]
        for label, row in zip(self.labels, self.confusion):
            lines.append(f"{label:<{width}}  " + "  ".join(f"{n:>{cell}d}" for n in row))
        return "\n".join(lines)


def scores(true: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> Evaluation:
    """Accuracy, per-class precision, recall and F1 (0 where undefined: a class
    never predicted, or absent), and the confusion matrix, of label indices.

    >>> scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ("ham", "spam")).per_class["spam"]
    ClassScores(precision=0.6666666666666666, recall=1.0, f1=0.8, support=2)
    """
    true, predicted = np.asarray(true), np.asarray(predicted)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    per_class = {}
    for i, label in enumerate(labels):
        hits, predicted_i, actual_i = confusion[i, i], confusion[:, i].sum(), confusion[i].sum()
        precision = hits / predicted_i if predicted_i else 0.0
        recall = hits / actual_i if actual_i else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassScores(float(precision), float(recall), float(f1), int(actual_i))
    return Evaluation(tuple(labels), float((true == predicted).mean()) if len(true) else 0.0, per_class, confusion.tolist(), len(true))


def evaluate(
    classifier: TextClassifier,
    texts: list[str],
    labels: list[str],
    *,
    batch_size: int = BATCH_SIZE,
    windows: str | None = None,
    progress: bool = False,
) -> Evaluation:
    """Scores `classifier` on labeled examples; every label must be one of its labels."""
    index = {label: i for i, label in enumerate(classifier.labels)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(f"the test labels {unknown} are not among the model's labels {list(classifier.labels)}")
    if not texts:
        raise ValueError("no labeled examples to evaluate on")
    probs = [p for _, p in classify_in_batches(classifier, texts, batch_size=batch_size, windows=windows, progress=progress)]
    return scores(np.array([index[label] for label in labels]), np.argmax(probs, axis=1), classifier.labels)
