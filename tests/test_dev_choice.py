"""The one rule every experiment chooses a setting by: each candidate on the first
seed, the best on dev kept, the other seeds at it."""

from learnjax.experiments.dev_choice import choose_on_dev


def test_the_best_on_dev_is_kept_and_run_on_the_other_seeds():
    calls = []

    def run(seed, rate):
        calls.append((seed, rate))
        return {"seed": seed, "rate": rate, "dev": {1e-3: 0.5, 3e-3: 0.9, 1e-2: 0.7}[rate]}

    choice = choose_on_dev(run, (1e-3, 3e-3, 1e-2), (0, 1, 2), lambda r: r["dev"])
    assert choice.best == 3e-3
    assert [(r["seed"], r["rate"]) for r in choice.runs] == [(0, 3e-3), (1, 3e-3), (2, 3e-3)]
    assert calls == [(0, 1e-3), (0, 3e-3), (0, 1e-2), (1, 3e-3), (2, 3e-3)]  # the first seed's run is not repeated
    assert choice.on_dev == {1e-3: 0.5, 3e-3: 0.9, 1e-2: 0.7}


def test_later_scores_break_ties_and_a_full_tie_keeps_the_first_listed():
    dev = {"a": (1.0, -0.3), "b": (1.0, -0.1), "c": (0.5, 0.0)}
    assert choose_on_dev(lambda seed, c: c, "abc", (0,), dev.__getitem__).best == "b"
    assert choose_on_dev(lambda seed, c: c, "xyz", (0, 1), lambda c: 1.0).best == "x"
