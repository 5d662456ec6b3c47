"""Where the time of one compiled masked-prediction step goes, op by op.

    python benchmarks/profile_step.py [--sizes docs,large] [--steps 3] [--torch] [--json out.json]

Runs the library's step (`learnjax.training.fused_masked_prediction_step`, one call
per step; `train_masked_prediction` runs it twenty times per call) under `jax.profiler`, reads the trace back and
joins each op with the optimised XLA program, so that every matrix product
gets its shape, its form and its achieved GFLOP/s. Prints, per size:

- time per step by kind of op (matrix products run by YNNPACK, those run by
  Eigen, layout copies, broadcasts, other fusions) and how often two ops ran
  at once;
- the slowest matrix products, with operand shapes, the contracted axes
  ("NN": a plain product, "NT"/"TN": one operand transposed, "batched": a
  leading batch axis, as in attention) and GFLOP/s;
- with `--torch`, the same step in PyTorch eager (`torch_impl.py`) by
  `torch.profiler`, for comparison.

Read the Eigen rows with care: XLA runs an Eigen matrix product as an
asynchronous task, so the trace shows only its start, and its work lands in
whatever ops run beside it; those ops then look slower than they are.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import math
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

# Trace events that are not ops of the program (runtime bookkeeping, Python frames).
NOT_OPS = ("ThunkExecutor", "$", "PjitFunction", "CommonPjRt", "PjRt", "end:", "SlinkyThreadPool", "ThreadpoolListener",
           "Wait for", "Handle input", "ParseArguments", "AllocateOutputBuffers", "PythonRefManager", "DevicePut")


@dataclass
class Product:
    """One matrix product of the compiled program."""

    name: str
    lhs: tuple[int, ...]
    rhs: tuple[int, ...]
    lhs_contracting: tuple[int, ...]
    rhs_contracting: tuple[int, ...]
    batch: bool
    flops: int

    @property
    def form(self) -> str:
        if self.batch:
            return "batched"
        lhs_t = self.lhs_contracting != (len(self.lhs) - 1,)
        rhs_t = self.rhs_contracting != (0,)
        return ("T" if lhs_t else "N") + ("T" if rhs_t else "N")

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.lhs))} · {'x'.join(map(str, self.rhs))}"


def _dims(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def products_in(hlo: str) -> dict[str, Product]:
    """Every dot of the optimised HLO text, keyed by the name the profiler shows:
    the dot itself, or the YNNPACK fusion that wraps it."""
    shapes = {m.group(1): _dims(m.group(2)) for m in re.finditer(r"%([\w.\-]+) = f32\[([\d,]*)\]", hlo)}
    computations = {m.group(1): m.group(2) for m in re.finditer(r"^%([\w.\-]+) .*?\{\n(.*?)\n\}", hlo, re.S | re.M)}

    def parse(name: str, dot_line: str) -> Product | None:
        m = re.search(r"= f32\[([\d,]*)\]\S* dot\(%([\w.\-]+), %([\w.\-]+)\)", dot_line)
        if not m:
            return None
        out, lhs, rhs = _dims(m.group(1)), shapes.get(m.group(2), ()), shapes.get(m.group(3), ())
        lc = _dims(re.search(r"lhs_contracting_dims=\{([\d,]*)\}", dot_line).group(1))
        rc = _dims(re.search(r"rhs_contracting_dims=\{([\d,]*)\}", dot_line).group(1))
        k = math.prod(lhs[i] for i in lc) if lhs else 0
        return Product(name, lhs, rhs, lc, rc, "lhs_batch_dims" in dot_line, 2 * math.prod(out) * k)

    found = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = f32\[[\d,]*\]\S* (dot|fusion)\(", line)
        if not m:
            continue
        name = m.group(1)
        if m.group(2) == "dot":
            product = parse(name, line)
        elif '"__ynn_fusion"' in line:
            called = re.search(r"calls=%([\w.\-]+)", line).group(1)
            dots = [d for d in computations.get(called, "").splitlines() if " dot(" in d]
            product = parse(name, dots[0]) if dots else None
        else:
            product = None
        if product:
            found[name] = product
    return found


def kind_of(name: str, products: dict[str, Product]) -> str:
    if name in products:
        return "matrix products (YNNPACK)" if name.startswith("ynn_fusion") else "matrix products (Eigen, asynchronous)"
    if name.startswith("ynn_fusion"):
        return "other YNNPACK fusions"
    if "transpose" in name or re.match(r"(copy|bitcast_copy|copy_bitcast)", name):
        return "layout copies"
    if "broadcast" in name:
        return "broadcasts"
    return "other fusions (element-wise, reductions)"


def read_trace(folder: Path) -> list[dict]:
    path = sorted(glob.glob(str(folder / "plugins" / "profile" / "*" / "*.trace.json.gz")))[-1]
    with gzip.open(path) as f:
        events = json.load(f)["traceEvents"]
    return [e for e in events if e.get("ph") == "X" and e.get("dur", 0) > 0 and not e["name"].startswith(NOT_OPS)]


def overlap(ops: list[dict]) -> dict[int, float]:
    """Microseconds during which 0, 1, 2, ... ops were running, from the first op to the last."""
    points = sorted([(e["ts"], 1) for e in ops] + [(e["ts"] + e["dur"], -1) for e in ops])
    running, last, spent = 0, points[0][0], collections.Counter()
    for t, change in points:
        spent[running] += t - last
        running, last = running + change, t
    return dict(spent)


def profile_jax(size: harness.Size, data: dict, steps: int) -> dict:
    import jax
    from flax import nnx

    from learnjax.masking import max_predictions_for
    from learnjax.model import EncoderConfig
    from learnjax.pretraining import create_model_and_optimizer
    from learnjax.training import adamw, fused_masked_prediction_step

    config = EncoderConfig(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
    graphdef, state = nnx.split(create_model_and_optimizer(config, adamw(size.learning_rate, 1800, 100, 0.01), jax.random.key(0)))
    static = {"vocab_size": size.vocab_size, "rate": size.mask_rate, "max_predictions": max_predictions_for(size.max_len, size.mask_rate)}
    batches = data["mlm_idx"]
    key = jax.random.key(0)

    def run(first: int, n: int):
        nonlocal state
        for i in range(first, first + n):
            idx = batches[i % len(batches)]
            state, loss, _ = fused_masked_prediction_step(state, key, i, data["mlm_tokens"][idx], data["mlm_segments"][idx], graphdef=graphdef, **static)
        return jax.block_until_ready(loss)

    idx = batches[0]
    hlo = fused_masked_prediction_step.lower(state, key, 0, data["mlm_tokens"][idx], data["mlm_segments"][idx], graphdef=graphdef, **static).compile().as_text()
    run(0, 3)  # compiled and warm
    started = time.perf_counter()
    run(3, steps)
    step_s = (time.perf_counter() - started) / steps
    folder = Path(tempfile.mkdtemp(prefix="learnjax-profile-"))
    jax.profiler.start_trace(str(folder))
    run(3 + steps, steps)
    jax.profiler.stop_trace()

    ops = read_trace(folder)
    products = products_in(hlo)
    by_kind, count = collections.Counter(), collections.Counter()
    by_op = collections.Counter()
    for e in ops:
        by_kind[kind_of(e["name"], products)] += e["dur"] / steps
        count[kind_of(e["name"], products)] += 1
        by_op[e["name"]] += e["dur"] / steps
    busy = overlap(ops)
    slowest = sorted((n for n in by_op if n in products), key=by_op.get, reverse=True)
    return {
        "step_ms": step_s * 1e3,
        "hand_counted_gflop": harness.step_flops(size, "masked") / 1e9,
        "kinds": [{"kind": k, "ms": us / 1e3, "ops": count[k] // steps} for k, us in by_kind.most_common()],
        "ops_running_ms": {n: us / steps / 1e3 for n, us in sorted(busy.items())},
        "products": [{"name": n, "form": products[n].form, "shapes": products[n].describe(),
                      "gflop": products[n].flops / 1e9, "ms": by_op[n] / 1e3,
                      "gflop_s": products[n].flops / (by_op[n] * 1e-6) / 1e9 if by_op[n] else None} for n in slowest],
    }


def profile_torch(size: harness.Size, data: dict, steps: int) -> dict:
    import bench_steps
    from torch.profiler import ProfilerActivity, profile

    runner = bench_steps.TorchSteps("masked", size, data, compile=False)
    for i in range(3):
        runner.sync([runner.call(i)])
    started = time.perf_counter()
    for i in range(3, 3 + steps):
        runner.sync([runner.call(i)])
    step_s = (time.perf_counter() - started) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            runner.sync([runner.call(i)])
    ops = sorted(prof.key_averages(), key=lambda a: a.self_cpu_time_total, reverse=True)
    return {"step_ms": step_s * 1e3,
            "ops": [{"op": a.key, "ms": a.self_cpu_time_total / steps / 1e3, "calls": a.count // steps} for a in ops[:12]]}


def report(name: str, jax_result: dict, torch_result: dict | None, top: int) -> str:
    r = jax_result
    lines = [f"== {name}: learnjax step {r['step_ms']:.1f} ms, {r['hand_counted_gflop']:.1f} GFLOP of matrix products "
             f"({r['hand_counted_gflop'] / r['step_ms'] * 1e3:.0f} GFLOP/s over the whole step)"]
    lines.append(f"  {'kind of op':42s} {'ms/step':>8} {'share':>6} {'ops':>5}")
    total = sum(k["ms"] for k in r["kinds"])
    for k in r["kinds"]:
        lines.append(f"  {k['kind']:42s} {k['ms']:8.1f} {k['ms'] / total:6.0%} {k['ops']:5d}")
    running = ", ".join(f"{n} op{'s' if n != 1 else ''}: {ms:.1f} ms" for n, ms in r["ops_running_ms"].items())
    lines.append(f"  time with n ops running, per step: {running}")
    lines.append(f"  slowest matrix products: {'form':8} {'operands':28} {'GFLOP':>6} {'ms':>6} {'GFLOP/s':>8}")
    for p in r["products"][:top]:
        rate = "async" if p["name"].startswith("dot") else f"{p['gflop_s']:.0f}"
        lines.append(f"    {p['name']:22s} {p['form']:8} {p['shapes']:28} {p['gflop']:6.2f} {p['ms']:6.2f} {rate:>8}")
    if torch_result:
        lines.append(f"  PyTorch eager step {torch_result['step_ms']:.1f} ms; its slowest ops (self time per step):")
        for op in torch_result["ops"]:
            lines.append(f"    {op['op']:40s} {op['ms']:7.1f} ms {op['calls']:4d} calls")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="docs,large", help="comma-separated: docs, large")
    parser.add_argument("--steps", type=int, default=3, help="steps timed and profiled (default 3)")
    parser.add_argument("--top", type=int, default=12, help="matrix products listed (default 12)")
    parser.add_argument("--torch", action="store_true", help="also profile the PyTorch eager step (needs torch)")
    parser.add_argument("--json", type=Path, help="also write the profile to this file")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    out = {}
    for size in harness.sizes(args.sizes.split(",")):
        data = harness.make_data(size, n_batches=8)
        out[size.name] = {"jax": profile_jax(size, data, args.steps)}
        if args.torch:
            out[size.name]["torch"] = profile_torch(size, data, args.steps)
        print(report(size.label(), out[size.name]["jax"], out[size.name].get("torch"), args.top), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
