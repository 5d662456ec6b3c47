"""How the experiments choose a setting (a learning rate, a regularisation
strength): each candidate is tried on the first seed, the one whose run scores
best on the dev split is kept, and the other seeds run at it. The held-out test
split is never looked at to choose."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

Run = TypeVar("Run")


class Choice(NamedTuple, Generic[Run]):
    best: Any  # the candidate kept
    runs: list[Run]  # at it, one per seed: the first seed's run of the search, then the other seeds'
    on_dev: dict[Any, Any]  # each candidate's dev score, as `dev_score` gave it


def choose_on_dev(run: Callable[[int, Any], Run], candidates: Sequence, seeds: Sequence[int], dev_score: Callable[[Run], Any]) -> Choice[Run]:
    """`run(seed, candidate)` for each candidate on `seeds[0]`; the candidate whose
    run has the highest `dev_score` (a number, or a tuple: later items break
    ties; on a full tie the first listed) is kept and run on the other seeds."""
    search = {candidate: run(seeds[0], candidate) for candidate in candidates}
    on_dev = {candidate: dev_score(result) for candidate, result in search.items()}
    best = max(candidates, key=lambda candidate: on_dev[candidate])
    return Choice(best, [search[best]] + [run(seed, best) for seed in seeds[1:]], on_dev)
