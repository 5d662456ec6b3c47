"""The classical baseline: TF-IDF + logistic regression on the very splits,
seeds and labeled subsets of the label-efficiency experiment, in rows of its shape."""

import json

from learnjax import baseline, messages
from learnjax.cache import cached_json
from learnjax.cli import main
from learnjax.experiments import LABEL_SIZES, SEEDS


def test_the_baseline_trains_on_the_label_efficiency_subsets(monkeypatch):
    seen = []

    def fit_and_score(texts, labels, C, splits):
        seen.append((tuple(texts), C))
        return {"dev": 0.5, "dev_loss": C, "test": 0.75}  # the smallest dev loss wins the tie: the first C

    monkeypatch.setattr(baseline, "_fit_and_score", fit_and_score)
    result = baseline._tfidf_label_efficiency((8, 16), (0, 1, 2), (0.1, 1.0))
    pool = messages.labeled_splits()["pool"]
    subset = lambda n, seed: tuple(m.text for m in messages.balanced_subset(pool, n, seed))  # noqa: E731
    assert seen == [(subset(8, 0), 0.1), (subset(8, 0), 1.0), (subset(8, 1), 0.1), (subset(8, 2), 0.1),
                    (subset(16, 0), 0.1), (subset(16, 0), 1.0), (subset(16, 1), 0.1), (subset(16, 2), 0.1)]
    assert [(r["n_labels"], r["C"], r["mean"], r["std"], r["scores"]) for r in result["rows"]] == [
        (8, 0.1, 0.75, 0.0, [0.75] * 3), (16, 0.1, 0.75, 0.0, [0.75] * 3)]


def test_the_cached_baseline_has_the_rows_of_the_label_efficiency_experiment():
    result = baseline.tfidf_label_efficiency()
    assert [r["n_labels"] for r in result["rows"]] == list(LABEL_SIZES) and result["seeds"] == list(SEEDS)
    for row in result["rows"]:
        assert row["mode"] == "tfidf" and len(row["scores"]) == len(SEEDS) and 0 <= row["mean"] <= 1 and row["C"] in baseline.C_VALUES
    assert result["rows"][-1]["mean"] > result["rows"][0]["mean"]  # more labels, better


def test_the_table_gains_a_column_for_the_baseline():
    table = "| labels | fine-tuned |\n|---|---|\n| 8 | 90.0% ± 1.0% |\n| 16 | 95.0% ± 0.5% |"
    rows = [{"n_labels": 8, "mean": 0.6, "std": 0.05}, {"n_labels": 16, "mean": 0.7, "std": 0.0}]
    assert baseline.table_with_baseline(table, {"rows": rows}).splitlines() == [
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
