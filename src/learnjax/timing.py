"""Side-by-side timing of compiled functions on a shared, noisy machine.

Each candidate is called once first (that call compiles, and is not timed).
Then the timed rounds alternate between the candidates, so a burst of
background load slows all of them alike; each ratio is the median of per-round
ratios, each pair measured moments apart.
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

import jax


def seconds_per_call(fn: Callable[[], Any], min_seconds: float) -> float:
    """The mean seconds per call of `fn`, over calls made back to back for about
    `min_seconds`, waiting for the last result.

    Calls are dispatched asynchronously: the time spent dispatching them says
    little about the time they take to run. So one call, waited for, sizes the
    run; then the run's calls queue up one after another, as in a training loop.
    A call that alone takes `min_seconds` is the run.
    """
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

    def speedup(self, name: str) -> float:
        """How many times faster `name` ran than the baseline (median of per-round ratios)."""
        return statistics.median(b / t for b, t in zip(self.rounds[self.baseline], self.rounds[name]))

    def table(self, unit: str = "ms per call", scale: float = 1e3, per_second: tuple[str, float] | None = None) -> str:
        """A Markdown table: time per call, optionally a rate (`per_second=("tokens/s", tokens per call)`),
        and the speed-up over the baseline."""
        columns = [unit] + ([per_second[0]] if per_second else []) + [f"× {self.baseline}"]
        lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for name in self.rounds:
            rate = f" {per_second[1] / self.seconds(name):,.0f} |" if per_second else ""
            lines.append(f"| {name} | {self.seconds(name) * scale:.2f} |{rate} {self.speedup(name):.2f} |")
        return "\n".join(lines)


def compare(candidates: dict[str, Callable[[], Any]], *, rounds: int = 5, min_seconds: float = 0.1) -> Comparison:
    """Times each zero-argument callable, interleaved over `rounds` rounds.

    >>> import jax.numpy as jnp
    >>> x = jnp.ones((64, 64))
    >>> result = compare({"one product": lambda: x @ x, "two products": lambda: x @ x @ x}, rounds=3, min_seconds=0.01)
    >>> sorted(result.rounds) == ["one product", "two products"] and result.speedup("one product") == 1.0
    True
    """
    for fn in candidates.values():
        jax.block_until_ready(fn())  # compile outside the timed rounds
    measured: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            measured[name].append(seconds_per_call(fn, min_seconds))
    return Comparison(measured)


def _machine_busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of the child processes it has waited for."""
    import resource  # Unix only; called only where /proc/stat exists

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


@contextlib.contextmanager
def other_processes_load() -> Iterator[dict]:
    """Measures how many cores other processes kept busy, on average, while the
    block ran: `{"cores": ...}`, None where the system does not say (not Linux).
    Timings taken beside other work are slower than on a quiet machine; this
    says by how much the machine was shared."""
    result: dict = {"cores": None}
    busy = _machine_busy_seconds()
    own, started = (_own_cpu_seconds() if busy is not None else 0.0), time.perf_counter()
    yield result
    if busy is not None:
        others = (_machine_busy_seconds() - busy) - (_own_cpu_seconds() - own)
        result["cores"] = max(0.0, others / (time.perf_counter() - started))
