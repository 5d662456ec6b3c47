"""A classical baseline, for honesty: TF-IDF features and logistic regression.

Before crediting pre-training for a spam filter, compare it with what a
practitioner would try first: word and word-pair counts weighted by TF-IDF,
and a linear classifier on them (scikit-learn, installed with the `docs` and
`test` extras, not with the library). `tfidf_label_efficiency` runs it exactly
as `learnjax.experiments.label_efficiency` runs the neural modes: the same
labeled subsets (`messages.balanced_subset` of the pool), the same seeds, the
regularisation chosen per cell on the dev set, scored on the same test set.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from learnjax.data import messages
from learnjax.experiments import LABEL_SIZES, SEEDS
from learnjax.experiments.dev_choice import choose_on_dev
from learnjax.site.render import PLUS_MINUS
from learnjax.storage.cache import cached_json

C_VALUES = (0.1, 1.0, 10.0, 100.0, 1000.0)  # inverse regularisation strengths searched, as learning rates are for the neural modes


def fit_tfidf(texts: list[str], labels: list, C: float = 1.0):
    """TF-IDF + logistic regression fitted on labeled texts: a scikit-learn
    pipeline (`predict`, `predict_proba`, `score`). Words and word pairs are
    the features, their counts damped (sublinear TF) and weighted by IDF.

    >>> model = fit_tfidf(["win a free prize", "see you at lunch", "claim your prize", "lunch at noon?"], ["spam", "ham", "spam", "ham"])
    >>> model.predict(["a free prize for you"]).tolist()
    ['spam']
    """
    # scikit-learn is imported where used: the docs and test extras install it, the library alone does not
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=C, max_iter=1000)).fit(texts, labels)


def tfidf_accuracy(train, dev, test, c_values=C_VALUES) -> float:
    """Test accuracy of `fit_tfidf` on `train` (items with `text` and `label`),
    its regularisation the one of `c_values` that scores best on `dev`."""
    fitted = [fit_tfidf([m.text for m in train], [m.label for m in train], C) for C in c_values]
    best = max(fitted, key=lambda model: model.score([m.text for m in dev], [m.label for m in dev]))
    return float(best.score([m.text for m in test], [m.label for m in test]))


def fit_and_score(texts: list[str], labels: list[int], C: float, splits: dict) -> dict:
    """Accuracy of `fit_tfidf` on the dev and test sets, and the dev log loss
    (to break ties, as the neural modes' search does)."""
    from sklearn.metrics import log_loss  # where used, as in fit_tfidf: an extra, not a dependency

    model = fit_tfidf(texts, labels, C)
    scores = {}
    for split in ("dev", "test"):
        items = splits[split]
        truth = [m.label for m in items]
        scores[split] = float(model.score([m.text for m in items], truth))
        if split == "dev":
            scores["dev_loss"] = float(log_loss(truth, model.predict_proba([m.text for m in items]), labels=model.classes_))
    return scores


def measure_tfidf_label_efficiency(sizes: tuple[int, ...], seeds: tuple[int, ...], C_values: tuple[float, ...]) -> dict:
    started = time.perf_counter()
    splits = messages.labeled_splits()

    def run(n: int, seed: int, C: float) -> dict:
        labeled = messages.balanced_subset(splits["pool"], n, seed)
        return fit_and_score([m.text for m in labeled], [m.label for m in labeled], C, splits)

    rows = []
    for n in sizes:
        # The dev loss breaks ties: with many labels most C score 100% on dev.
        best, runs, on_dev = choose_on_dev(functools.partial(run, n), C_values, seeds, lambda r: (r["dev"], -r["dev_loss"]))
        test = [r["test"] for r in runs]
        rows.append(
            {
                "mode": "tfidf",
                "n_labels": n,
                "C": best,
                "mean": float(np.mean(test)),
                "std": float(np.std(test)),
                "scores": test,
                "dev_by_C": {str(C): on_dev[C][0] for C in C_values},
            }
        )
    return {"rows": rows, "C_values": list(C_values), "seeds": list(seeds), "seconds": time.perf_counter() - started}


def tfidf_label_efficiency(sizes: tuple[int, ...] = LABEL_SIZES, seeds: tuple[int, ...] = SEEDS, C_values: tuple[float, ...] = C_VALUES) -> dict:
    """Held-out accuracy of TF-IDF + logistic regression against the number of
    labels: rows of the shape `label_efficiency` gives (`n_labels`, `mean` and
    `std` over the seeds, `scores`), with the `C` chosen on the dev set."""
    params = {"sizes": tuple(sizes), "seeds": tuple(seeds), "C_values": tuple(C_values)}
    return cached_json("tfidf-baseline", params, measure_tfidf_label_efficiency)


def table_with_baseline(table: str, baseline: dict) -> str:
    """`experiments.label_efficiency_table`'s Markdown table with a column for the baseline."""
    cells = {row["n_labels"]: row for row in baseline["rows"]}
    header, rule, *rows = table.splitlines()
    lines = [f"{header} TF-IDF + logistic regression |", f"{rule}---|"]
    for row in rows:
        cell = cells.get(int(row.split("|")[1]))
        lines.append(f"{row} {cell['mean']:.1%}{PLUS_MINUS}{cell['std']:.1%} |" if cell else f"{row} – |")
    return "\n".join(lines)
