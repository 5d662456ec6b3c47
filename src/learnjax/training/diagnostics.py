"""Counting XLA compilations, to prove that a training loop compiles its step once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import jax

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@dataclass
class CompileCount:
    count: int = 0


@contextlib.contextmanager
def count_compilations() -> Iterator[CompileCount]:
    """Counts the XLA programs compiled inside the `with` block.

    >>> import jax, jax.numpy as jnp
    >>> double = jax.jit(lambda x: 2 * x)
    >>> x = jnp.ones(3)
    >>> with count_compilations() as compiled:
    ...     for _ in range(5):
    ...         y = double(x)
    >>> compiled.count
    1
    """
    counter = CompileCount()

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == _BACKEND_COMPILE:
            counter.count += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
