"""The classical baseline: TF-IDF + logistic regression on the very splits,
seeds and labeled subsets of the label-efficiency experiment, in rows of its shape."""

import json

from distinguishable_splits import spam_share_splits
from learnjax.cli import main
from learnjax.data import messages
from learnjax.experiments import LABEL_SIZES, SEEDS, tfidf_baseline
from learnjax.storage.cache import cached_json


def test_the_baseline_trains_on_the_label_efficiency_subsets(monkeypatch):
    seen = []

    def fit_and_score(texts, labels, C, splits):
        seen.append((tuple(texts), C))
        return {"dev": 0.5, "dev_loss": C, "test": 0.75}  # the smallest dev loss wins the tie: the first C

    monkeypatch.setattr(tfidf_baseline, "fit_and_score", fit_and_score)
    result = tfidf_baseline.measure_tfidf_label_efficiency((8, 16), (0, 1, 2), (0.1, 1.0))
    pool = messages.labeled_splits()["pool"]
    subset = lambda n, seed: tuple(m.text for m in messages.balanced_subset(pool, n, seed))  # noqa: E731
    assert seen == [(subset(8, 0), 0.1), (subset(8, 0), 1.0), (subset(8, 1), 0.1), (subset(8, 2), 0.1),
                    (subset(16, 0), 0.1), (subset(16, 0), 1.0), (subset(16, 1), 0.1), (subset(16, 2), 0.1)]
    assert [(r["n_labels"], r["C"], r["mean"], r["std"], r["scores"]) for r in result["rows"]] == [
        (8, 0.1, 0.75, 0.0, [0.75] * 3), (16, 0.1, 0.75, 0.0, [0.75] * 3)]


SPAM_C, HAM_C = 0.1, 10.0  # regularisations whose "fit" says always spam, never spam


def test_c_is_chosen_on_dev_and_the_test_scores_are_reported(monkeypatch):
    """Dev prefers the C that says spam (3/4 against 1/4), test the other: the
    baseline must follow dev, record dev's scores, and report that C's test scores."""
    from sklearn.dummy import DummyClassifier

    splits = spam_share_splits()
    monkeypatch.setattr(messages, "labeled_splits", lambda seed=0: splits)
    pool, fitted_on = {m.text for m in splits["pool"]}, []

    def constant_fit(texts, labels, C=1.0):
        fitted_on.append(set(texts))
        return DummyClassifier(strategy="constant", constant=messages.SPAM if C == SPAM_C else messages.HAM).fit(texts, labels)

    monkeypatch.setattr(tfidf_baseline, "fit_tfidf", constant_fit)
    result = tfidf_baseline.measure_tfidf_label_efficiency((8, 16), (0, 1, 2), (SPAM_C, HAM_C))
    for row in result["rows"]:
        assert row["C"] == SPAM_C and row["scores"] == [0.25] * 3, row
        assert row["dev_by_C"] == {str(SPAM_C): 0.75, str(HAM_C): 0.25}, row
    assert fitted_on and all(texts <= pool for texts in fitted_on), "fitted on messages outside the pool"


def test_the_cached_baseline_has_the_rows_of_the_label_efficiency_experiment():
    result = tfidf_baseline.tfidf_label_efficiency()
    assert [r["n_labels"] for r in result["rows"]] == list(LABEL_SIZES) and result["seeds"] == list(SEEDS)
    for row in result["rows"]:
        assert row["mode"] == "tfidf" and len(row["scores"]) == len(SEEDS) and 0 <= row["mean"] <= 1 and row["C"] in tfidf_baseline.C_VALUES
    assert result["rows"][-1]["mean"] > result["rows"][0]["mean"]  # more labels, better


def test_the_table_gains_a_column_for_the_baseline():
    table = "| labels | fine-tuned |\n|---|---|\n| 8 | 90.0% ± 1.0% |\n| 16 | 95.0% ± 0.5% |"
    rows = [{"n_labels": 8, "mean": 0.6, "std": 0.05}, {"n_labels": 16, "mean": 0.7, "std": 0.0}]
    assert tfidf_baseline.table_with_baseline(table, {"rows": rows}).splitlines() == [
        "| labels | fine-tuned | TF-IDF + logistic regression |", "|---|---|---|",
        "| 8 | 90.0% ± 1.0% | 60.0%\u00a0±\u00a05.0% |", "| 16 | 95.0% ± 0.5% | 70.0%\u00a0±\u00a00.0% |"]  # no-break spaces


def _small_label_efficiency() -> dict:
    rows = [{"mode": mode, "n_labels": n, "mean": 0.9, "std": 0.0, "scores": [0.9]} for mode in ("full", "probe", "scratch") for n in (8, 16)]
    return {"rows": rows, "seconds": 1.0, "settings": {"steps": 80, "batch_size": 16}, "learning_rates": [0.001], "seeds": [0]}


def test_the_label_efficiency_command_shows_the_baseline_beside_the_neural_modes(monkeypatch, capsys):
    from learnjax import experiments

    monkeypatch.setattr(experiments, "label_efficiency", lambda: cached_json("test-label-efficiency", {}, _small_label_efficiency))
    assert main(["experiment", "label-efficiency"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("| from scratch | TF-IDF + logistic regression |")
    assert lines[2].startswith("| 8 | 90.0%\u00a0±\u00a00.0% |") and lines[2].count("|") == 6  # one value: no-break spaces
    assert main(["experiment", "label-efficiency", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["n_labels"] for r in result["baseline"]["rows"]] == [8, 16] and result["baseline"]["seeds"] == [0]
