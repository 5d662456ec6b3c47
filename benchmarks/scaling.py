"""Training throughput against the number of devices, data parallel and FSDP.

    python -m benchmarks.scaling                 # every count up to the devices found (8 simulated on a CPU)
    python -m benchmarks.scaling --devices 1,2,4 --size docs --steps 40

Each (devices, layout) runs in a fresh process, the library's masked-prediction
loop (`train_masked_prediction` with a mesh), timed after a warm-up call. On a
machine with accelerators it uses the devices JAX finds there (it refuses
nothing on a GPU). On a CPU it simulates devices (`JAX_NUM_CPU_DEVICES`): they
share the same cores, so the figures there are a smoke test of the sharded
programs, not a measure of speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import harness

RESULT = "SCALING-RESULT "


def child(devices: int, fsdp: bool, size_name: str, steps: int) -> dict:
    import jax
    from flax import nnx

    from learnjax.models.transformer import MaskedLanguageModel, TransformerConfig
    from learnjax.training import sharding
    from learnjax.training.loops import STEPS_PER_CALL, adamw, new_optimizer, train_masked_prediction

    size = harness.sizes([size_name])[0]
    data = harness.make_data(size)
    config = TransformerConfig(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
    mesh = sharding.data_mesh(devices) if devices > 1 else None
    model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
    optimizer = new_optimizer(model, adamw(steps + STEPS_PER_CALL, 10), size.learning_rate)

    def run(n: int) -> float:
        started = time.perf_counter()
        history = train_masked_prediction(model, optimizer, data["mlm_tokens"], data["mlm_segments"], steps=n,
                                          batch_size=size.batch_size, mask_rate=size.mask_rate, mesh=mesh, fsdp=fsdp)
        assert len(history.loss) == n
        return time.perf_counter() - started

    run(STEPS_PER_CALL)  # compiled, warm
    seconds = run(steps)
    return {"devices": devices, "layout": "fsdp" if fsdp else "data parallel", "platform": jax.devices()[0].platform,
            "device_kind": jax.devices()[0].device_kind, "tokens_per_s": steps * size.batch_size * size.max_len / seconds}


def measure(counts: list[int], size_name: str, steps: int, simulate: bool) -> list[dict]:
    rows = []
    for n in counts:
        for fsdp in ([False] if n == 1 else [False, True]):
            env = {**os.environ, **({"JAX_NUM_CPU_DEVICES": str(n), "JAX_PLATFORMS": "cpu"} if simulate else {})}
            done = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--child", str(n), "--size", size_name, "--steps", str(steps),
                                   *(["--fsdp"] if fsdp else [])], capture_output=True, text=True, env=env, cwd=harness.ROOT)
            if done.returncode:
                print(f"{n} devices{' fsdp' if fsdp else ''}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            rows.append(json.loads(next(line for line in done.stdout.splitlines() if line.startswith(RESULT))[len(RESULT):]))
            print(f"  measured {n} devices, {rows[-1]['layout']}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", help="comma-separated device counts (default: 1, 2, 4, ... up to the devices found)")
    parser.add_argument("--size", choices=["docs", "large"], default="large")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fsdp", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT + json.dumps(child(args.child, args.fsdp, args.size, args.steps)))
        return 0
    import jax

    found = jax.devices()
    simulate = found[0].platform == "cpu"
    most = 8 if simulate else len(found)
    counts = [int(c) for c in args.devices.split(",")] if args.devices else [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= most]
    print(f"devices found: {len(found)} x {found[0].device_kind} ({found[0].platform})"
          + ("; simulating CPU devices, which share its cores: a smoke test, not a speed-up" if simulate else ""))
    rows = measure(counts, args.size, args.steps, simulate)
    base = next((r["tokens_per_s"] for r in rows if r["devices"] == 1), None)
    print(f"\n{'devices':>7}  {'layout':<14} {'tokens/s':>10}  {'x one device':>12}")
    for r in rows:
        ratio = f"{r['tokens_per_s'] / base:.2f}" if base else "-"
        print(f"{r['devices']:>7}  {r['layout']:<14} {r['tokens_per_s']:>10,.0f}  {ratio:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
