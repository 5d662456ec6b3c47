"""Timing on a shared, noisy machine: compiled functions side by side, and how
many cores other processes kept busy meanwhile.

Each candidate is called once first (that call compiles, and is not timed).
Then the timed rounds alternate between the candidates, so a burst of
background load slows all of them alike; each ratio is the median of per-round
ratios, each pair measured moments apart.

Imports jax only when it times something: the PyTorch processes of the
benchmarks read the machine's load through this module without paying for jax.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


def seconds_per_call(fn: Callable[[], Any], min_seconds: float) -> float:
    """The mean seconds per call of `fn`, over calls made back to back for about
    `min_seconds`, waiting for the last result.

    Calls are dispatched asynchronously: the time spent dispatching them says
    little about the time they take to run. So one call, waited for, sizes the
    run; then the run's calls queue up one after another, as in a training loop.
    A call that alone takes `min_seconds` is the run.
    """
    import jax

    started = time.perf_counter()
    jax.block_until_ready(fn())
    once = time.perf_counter() - started
    if once >= min_seconds:  # a long call is a measurement of its own
        return once
    calls = math.ceil(min_seconds / once)
    started = time.perf_counter()
    for _ in range(calls):
        result = fn()
    jax.block_until_ready(result)
    return (time.perf_counter() - started) / calls


@dataclass
class Comparison:
    """Per-round seconds per call of each candidate; the first is the baseline."""

    rounds: dict[str, list[float]]

    @property
    def baseline(self) -> str:
        return next(iter(self.rounds))

    def seconds(self, name: str) -> float:
        return statistics.median(self.rounds[name])

    def speedup(self, name: str, over: str | None = None) -> float:
        """How many times faster `name` ran than `over` (default: the baseline),
        the median of per-round ratios."""
        return statistics.median(b / t for b, t in zip(self.rounds[over or self.baseline], self.rounds[name]))


def compare(candidates: dict[str, Callable[[], Any]], *, rounds: int = 5, min_seconds: float = 0.1) -> Comparison:
    """Times each zero-argument callable, interleaved over `rounds` rounds.

    >>> import jax.numpy as jnp
    >>> x = jnp.ones((64, 64))
    >>> result = compare({"one product": lambda: x @ x, "two products": lambda: x @ x @ x}, rounds=3, min_seconds=0.01)
    >>> sorted(result.rounds) == ["one product", "two products"] and result.speedup("one product") == 1.0
    True
    """
    import jax

    for fn in candidates.values():
        jax.block_until_ready(fn())  # compile outside the timed rounds
    measured: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            measured[name].append(seconds_per_call(fn, min_seconds))
    return Comparison(measured)


def busy_cpu_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the child processes it has waited for."""
    import resource  # Unix only; called only where /proc/stat exists

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of process `pid` so far, all its threads (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        after_name = f.read().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextlib.contextmanager
def other_processes_load(own: Callable[[], float] = own_cpu_seconds) -> Iterator[dict]:
    """Measures how many cores other processes kept busy, on average, while the
    block ran: `{"cores": ...}`, None where the system does not say (not Linux).
    `own()` counts the CPU seconds that are not "other" (default: this process
    and the children it waited for). Timings taken beside other work are slower
    than on a quiet machine; this says by how much the machine was shared."""
    result: dict = {"cores": None}
    busy = busy_cpu_seconds()
    mine, started = (own() if busy is not None else 0.0), time.perf_counter()
    yield result
    if busy is not None:
        others = (busy_cpu_seconds() - busy) - (own() - mine)
        result["cores"] = max(0.0, others / (time.perf_counter() - started))
