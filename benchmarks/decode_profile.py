"""Where the compiled decoding loop's time goes at batch 32, greedy: the loop as
shipped against the same loop with one part taken out, and against PyTorch eager.

    python -m benchmarks.decode_profile            # about a minute
    python -m benchmarks.decode_profile --runs 3   # the median of three runs side by side

Each variant is the library's `generate_tokens`, compiled on its own, with one
change made while it is traced: the KV cache's writes left out (the keys read
are zeros: timing only), or a context of exactly the positions this run fills
(80) rather than the model's 128, which shows what attending over the
unfilled rest of the cache costs. The difference between a variant and the
loop as shipped is what that part costs per token. Rounds interleave the
variants, so background load slows them alike. Same model and sizes as
`bench_generate` (random weights; speed does not depend on them).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
from collections.abc import Callable, Iterator

import numpy as np

from benchmarks import harness, timing
from benchmarks.bench_generate import D_FF, D_MODEL, HEADS, LAYERS, MAX_LEN, NEW, PROMPT, VOCAB, torch_candidates

BATCH = 32
SHIPPED = "learnjax, as shipped"


@contextlib.contextmanager
def cache_writes_left_out() -> Iterator[None]:
    from learnjax.models.transformer import KVCache

    write = KVCache.write
    KVCache.write = lambda self, keys, values, at: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        KVCache.write = write  # type: ignore[method-assign]


def variant(max_len: int, tracing: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> Callable[[], object]:
    """The decoding loop, compiled now (under `tracing`) on its own, as a call."""
    import jax
    from flax import nnx

    from learnjax.models.generation import generate_tokens
    from learnjax.models.transformer import NextWordModel, TransformerConfig

    model = NextWordModel(TransformerConfig(VOCAB, max_len, D_MODEL, LAYERS, HEADS, D_FF), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    rows = np.zeros((BATCH, max_len), np.int32)
    rows[:, :PROMPT] = np.random.default_rng(0).integers(7, VOCAB, (BATCH, PROMPT))
    lengths = np.full(BATCH, PROMPT, np.int32)
    loop = generate_tokens.__wrapped__

    def traced_anew(*args, **kwargs):  # a function of its own: JAX keeps one trace per function, and reuses it
        return loop(*args, **kwargs)

    compiled = jax.jit(functools.update_wrapper(traced_anew, loop), static_argnames=("graphdef", "use_cache", "stop_at_end"))

    def call():
        return jax.block_until_ready(compiled(state, rows, lengths, jax.random.key(0), np.int32(NEW), np.float32(0.0), np.int32(0),
                                              np.float32(1.0), graphdef=graphdef, stop_at_end=False))

    with tracing():
        call()
    return call


def one_run(rounds: int) -> dict[str, float]:
    """Microseconds per new token of each variant."""
    candidates = {
        SHIPPED: variant(MAX_LEN),
        "without the cache writes": variant(MAX_LEN, cache_writes_left_out),
        f"a context of {PROMPT + NEW}, not {MAX_LEN}": variant(PROMPT + NEW),
    }
    torch_rows = torch_candidates(BATCH, 0.0)
    candidates |= {name: run for name, run in torch_rows.items() if "1 thread" in name}
    result = timing.compare(candidates, rounds=rounds, min_seconds=0.2)
    return {name: result.seconds(name) / (BATCH * NEW) * 1e6 for name in candidates}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs side by side; the median is printed (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds in each run (default 5)")
    args = parser.parse_args(argv)
    runs = [one_run(args.rounds) for _ in range(args.runs)]
    names = list(runs[0])
    median = {name: statistics.median(run[name] for run in runs) for name in names}
    print(f"{harness.cpu_name()}; batch {BATCH}, greedy, prompt {PROMPT} + {NEW} new tokens; "
          f"median of {len(runs)} run(s), microseconds per new token:")
    for name in names:
        line = f"  {name:<36} {median[name]:>7.1f} us"
        if name != SHIPPED:
            line += f"   {median[name] - median[SHIPPED]:+7.1f} us against the loop as shipped"
        print(line)
    torch_name = next((name for name in names if name.startswith("PyTorch")), None)
    if torch_name:
        print(f"  learnjax as shipped is {median[torch_name] / median[SHIPPED]:.2f}x PyTorch eager (1 thread); "
              f"per run: {', '.join(f'{run[torch_name] / run[SHIPPED]:.2f}x' for run in runs)}")
    else:
        print("  (PyTorch not installed: pip install -e '.[bench]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
