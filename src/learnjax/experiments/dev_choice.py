"""How the experiments choose a setting (a learning rate, a regularisation
strength): each candidate is tried on the first seed, the one whose run scores
best on the dev split is kept, and the other seeds run at it. The held-out test
split is never looked at to choose."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from learnjax.storage.cache import in_threads

Run = TypeVar("Run")


class Choice(NamedTuple, Generic[Run]):
    best: Any  # the candidate kept
    runs: list[Run]  # at it, one per seed: the first seed's run of the search, then the other seeds'
    on_dev: dict[Any, Any]  # each candidate's dev score, as `dev_score` gave it


def choose_on_dev(run_at: Callable[[int, Any], Run], candidates: Sequence, seeds: Sequence[int], dev_score: Callable[[Run], Any]) -> Choice[Run]:
    """`run_at(seed, candidate)` for each candidate on `seeds[0]`; the candidate whose
    run has the highest `dev_score` (a number, or a tuple: later items break
    ties; on a full tie the first listed) is kept and run on the other seeds.
    Runs and scores go two at a time (`in_threads`): they are independent."""

    def run_and_score(candidate: Any) -> tuple[Run, Any]:
        result = run_at(seeds[0], candidate)
        return result, dev_score(result)

    scored = in_threads(run_and_score, candidates)
    search = {candidate: result for candidate, (result, _) in zip(candidates, scored)}
    on_dev = {candidate: score for candidate, (_, score) in zip(candidates, scored)}
    best = max(candidates, key=lambda candidate: on_dev[candidate])
    return Choice(best, [search[best]] + in_threads(lambda seed: run_at(seed, best), seeds[1:]), on_dev)
