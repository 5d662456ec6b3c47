"""Training-step throughput of learnjax against plain PyTorch, on this machine's CPU.

    python -m benchmarks.bench_steps [--json out.json] [--quick]
    python benchmarks/bench_steps.py [--json out.json] [--quick]   (the same)

Measures, at the docs' default model size and at a larger one, float32:
- tokens/s of the masked-prediction step, run through `learnjax.training.loops.train_masked_prediction`
  (`masked_prediction_steps`: up to twenty fused steps, masking plus the step, per compiled
  call with donated state, on packed rows with segments);
- examples/s of the supervised step, through `learnjax.training.loops.train_classifier`
  (`supervised_steps`: up to twenty `supervised_update` steps per compiled call, on an
  EncoderClassifier);
- time to the first finished step in a fresh process (imports, model, compile);
- FLOP utilisation: matrix-multiply FLOPs per step (counted by hand, see
  `harness.step_flops`; XLA's own count is in the JSON) over the best float32
  2048x2048 matmul rate measured in the same run;
side by side with the same JAX step without jit and a PyTorch implementation
(`torch_impl.py`) in eager mode and under torch.compile, when torch is installed.
What each optimisation of the library's step contributes is measured by
`variants.py`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file: the repository root holds the `benchmarks` package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness
from benchmarks.harness import Row, Runner

TORCH_PIN = "torch==2.13.0"


# ---------------------------------------------------------------- implementations (worker side)

class JaxLoop(Runner):
    """Steps run by the library's own training loops, `steps_per_call` at a time."""

    def __init__(self, objective: str, size, data, *, jit: bool):
        import jax
        import optax
        from flax import nnx

        from learnjax.models.transformer import EncoderClassifier, Transformer, TransformerConfig
        from learnjax.training.loops import STEPS_PER_CALL, adamw, train_classifier, train_masked_prediction
        from learnjax.training.pretraining import compile_for_pretraining, create_model_and_optimizer, model_shapes

        self.jax, self.objective, self.size, self.jit = jax, objective, size, jit
        config = TransformerConfig(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
        if objective == "masked":
            # As learnjax.training.pretraining.pretrain starts: both programs traced, then
            # compiled on a background thread (here nothing else waits to run).
            tx, key = adamw(1800, 100, 0.01), jax.random.key(0)
            shapes = model_shapes(config, tx)
            if jit:
                compile_for_pretraining(config, tx, key, shapes, batch_size=size.batch_size, mask_rate=size.mask_rate).result()
            self.model, self.optimizer = create_model_and_optimizer(config, tx, key, size.learning_rate, shapes)
            self.tokens, self.other = data["mlm_tokens"], data["mlm_segments"]
            self.loop = lambda steps: train_masked_prediction(self.model, self.optimizer, self.tokens, self.other, steps=steps,
                                                      batch_size=size.batch_size, mask_rate=size.mask_rate)
        else:
            self.model = EncoderClassifier(Transformer(config, rngs=nnx.Rngs(0)), 2, rngs=nnx.Rngs(1))
            self.optimizer = nnx.Optimizer(self.model, optax.adamw(1e-3, weight_decay=0.01), wrt=nnx.Param)
            self.tokens, self.other = data["sup_tokens"], data["sup_labels"]
            self.loop = lambda steps: train_classifier(self.model, self.optimizer, self.tokens, self.other, steps=steps,
                                                       batch_size=size.batch_size)
        # Several steps per call: a call pays the loop's own set-up (split, batch
        # order, a final read-back that drains the queue) once, as a run of many
        # steps does; fewer when steps are slow, so that a round stays short, but
        # never fewer than one compiled call of the supervised loop runs.
        if not jit:
            self.steps_per_call = 1
        elif size.name == "docs":
            self.steps_per_call = 50
        else:
            self.steps_per_call = STEPS_PER_CALL

    def first_step(self) -> float:
        return self._run(1)

    def _run(self, steps: int) -> float:
        if self.jit:
            return self.loop(steps).loss[-1]
        with self.jax.disable_jit():
            return self.loop(steps).loss[-1]

    def call(self, i):
        return self._run(self.steps_per_call)

    def sync(self, pending):
        return pending[-1]

    def info(self) -> dict:
        return {"xla_flops": xla_step_flops(self)} if self.jit else {}


def xla_step_flops(r: JaxLoop) -> float | None:
    """FLOPs of one compiled step as XLA's cost analysis counts them (element-wise work included)."""
    import jax
    import numpy as np
    from flax import nnx

    from learnjax.training.masking import masked_batch
    from learnjax.training.steps import masked_prediction_step, supervised_step

    B = r.size.batch_size
    graphdef, state = nnx.split((r.model, r.optimizer))
    if r.objective == "masked":
        args = (masked_batch(jax.random.key(0), r.tokens[:B], r.other[:B], r.size.vocab_size, r.size.mask_rate),)
        step = masked_prediction_step
    else:
        args = (r.tokens[:B], np.asarray(r.other[:B]))
        step = supervised_step

    def f(state, *args):
        model, optimizer = nnx.merge(graphdef, state)
        out = step(model, optimizer, *args)
        return out, nnx.state((model, optimizer))  # else XLA drops the backward pass and update as dead code

    cost = jax.jit(f).lower(state, *args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


class TorchSteps(Runner):
    def __init__(self, objective: str, size, data, *, compile: bool):
        import torch

        from benchmarks import torch_impl

        self.torch = torch
        self.objective = objective
        if objective == "masked":
            self.trainer = torch_impl.MaskedTrainer(size, compile=compile)
            self.a, self.b, self.idx = data["mlm_tokens"], data["mlm_segments"], data["mlm_idx"]
        else:
            self.trainer = torch_impl.SupervisedTrainer(size, compile=compile)
            self.a, self.b, self.idx = data["sup_tokens"], data["sup_labels"], data["sup_idx"]

    def call(self, i):
        idx = self.idx[i % len(self.idx)]
        return self.trainer.step(self.a[idx], self.b[idx])

    def sync(self, pending):
        return float(pending[-1][0])

    def info(self) -> dict:
        return {"torch": self.torch.__version__, "threads": self.torch.get_num_threads(),
                "cpu_capability": self.torch.backends.cpu.get_cpu_capability()}


def build(impl: str, objective: str, size, data) -> Runner:
    if impl == "jax-jit":
        return JaxLoop(objective, size, data, jit=True)
    if impl == "jax-nojit":
        return JaxLoop(objective, size, data, jit=False)
    if impl == "torch-eager":
        return TorchSteps(objective, size, data, compile=False)
    if impl == "torch-compile":
        return TorchSteps(objective, size, data, compile=True)
    if impl == "matmul":
        return harness.MatmulRunner(objective)
    raise ValueError(f"unknown implementation {impl!r}")


# ---------------------------------------------------------------- the run (parent side)

IMPL_NAMES = {"jax-jit": "learnjax (jit)", "jax-nojit": "learnjax (no jit)",
              "torch-eager": "PyTorch eager", "torch-compile": "PyTorch torch.compile"}


def plan(size_list, *, quick: bool, have_torch: bool, compile_supervised: bool = False) -> list[Row]:
    rows: list[Row] = []
    for size in size_list:
        rows += harness.matmul_peak_rows(size)
        impls = ["jax-jit", "torch-eager"] if quick else ["jax-jit", "jax-nojit", "torch-eager", "torch-compile"]
        if not have_torch:
            impls = [i for i in impls if not i.startswith("torch")]
        for objective in ("masked", "supervised"):
            for impl in impls:
                if impl == "torch-compile" and objective == "supervised" and not compile_supervised:
                    continue  # another cold compile of a minute or more; the masked row carries the comparison
                row = Row(f"{size.name} {objective} {impl}", impl, objective, size)
                if impl == "jax-nojit":
                    # Slow: two short rounds are enough; both objectives share one
                    # process, so the second one's first step is not cold.
                    row.max_rounds = 2 if objective == "masked" and size.name == "docs" else 1
                    row.round_s, row.group = 0.1, f"{size.name} nojit"
                rows.append(row)
    return rows


def fmt(x, spec, none="—"):
    return none if x is None else format(x, spec)


def _step_s(row: Row | None) -> float | None:
    if row is None or row.error:
        return None
    return row.median_step_s or row.calibration_s  # a row too slow for any round still has its calibration step


def report(rows: list[Row], peaks: dict[str, float | None]) -> tuple[str, list[dict]]:
    lines, records = [], []
    head = (f"{'size':6} {'step':10} {'implementation':24} {'throughput':>16} {'× eager':>8} {'× compile':>9} "
            f"{'1st step s':>10} {'GFLOP/s':>8} {'util':>6}")
    lines += [head, "-" * len(head)]
    by_key = {(r.size.name, r.objective, r.impl): r for r in rows}
    for r in rows:
        if r.impl == "matmul":
            continue
        step = _step_s(r)
        unit = "tok/s" if r.objective == "masked" else "ex/s"
        per_step = r.size.tokens_per_step if r.objective == "masked" else r.size.batch_size
        rate = per_step / step if step else None
        others = {impl: _step_s(by_key.get((r.size.name, r.objective, impl))) for impl in ("torch-eager", "torch-compile")}
        ratio = {impl: o / step if o and step else None for impl, o in others.items()}

        flops = harness.step_flops(r.size, r.objective)
        achieved = flops / step if step else None
        peak = peaks.get(r.size.name)
        util = achieved / peak if achieved and peak else None
        first = fmt(r.first_step_s, "10.1f") + ("" if r.first_step_fresh else "*")
        name = IMPL_NAMES.get(r.impl, r.impl)
        if r.error:
            lines.append(f"{r.size.name:6} {r.objective:10} {name:24} FAILED: {r.error[:80]}")
        else:
            lines.append(
                f"{r.size.name:6} {r.objective:10} {name:24} {fmt(rate, '10,.0f'):>10} {unit:5} {fmt(ratio['torch-eager'], '7.2f'):>8} "
                f"{fmt(ratio['torch-compile'], '8.2f'):>9} {first:>10} {fmt(achieved and achieved / 1e9, '8.1f'):>8} "
                f"{fmt(util and 100 * util, '5.0f') + '%':>6}"
            )
        records.append({**r.to_json(), "throughput": rate, "unit": unit, "ratio_to_torch_eager": ratio["torch-eager"],
                        "ratio_to_torch_compile": ratio["torch-compile"], "model_flops_per_step": flops,
                        "achieved_flops": achieved, "utilisation": util})
    return "\n".join(lines), records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--quick", action="store_true",
                        help="docs size only, fewer rounds, no torch.compile and no un-jitted rows (about a minute)")
    parser.add_argument("--sizes", help="comma-separated: docs, large (default: both; quick: docs)")
    parser.add_argument("--rounds", type=int, help="timed rounds per implementation (default: docs 5, large 3; quick 3 and 2)")
    parser.add_argument("--compile-supervised", action="store_true",
                        help="add a torch.compile row for the supervised step too (one more cold compile per size)")
    parser.add_argument("--cores", default="auto", help="pin every worker to this many cores; auto (default): "
                        "all, or 1 when other processes already keep the machine busy (see harness.choose_cores)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        print(f"torch is not installed: the PyTorch rows are skipped (pip install {TORCH_PIN}, or pip install -e '.[bench]')")
    size_list = harness.sizes((args.sizes or ("docs" if args.quick else "docs,large")).split(","))

    def rounds_for(s):
        return args.rounds or {("docs", False): 5, ("docs", True): 3}.get((s.name, args.quick), 2 if args.quick else 3)

    rows = plan(size_list, quick=args.quick, have_torch=have_torch, compile_supervised=args.compile_supervised)
    folder = Path(tempfile.mkdtemp(prefix="learnjax-bench-data-"))
    data_paths = harness.write_data(size_list, folder)
    for s in size_list:
        print(f"size {s.label()}: {s.tokens_per_step} tokens/step, {s.max_predictions} prediction slots per row, "
              f"masked step {harness.step_flops(s, 'masked') / 1e9:.2f} GFLOP")
    # Each size on its own: cores, workers and rounds, then the next size. The
    # rows of one size always share their conditions, so their ratios hold.
    cores_of = {}
    for s in size_list:
        size_rows = [r for r in rows if r.size.name == s.name]
        print(f"[{s.name}] {len(size_rows)} rows, {rounds_for(s)} rounds")
        cores_of[s.name] = harness.choose_cores(args.cores, log=lambda m: print("  " + m, flush=True))
        harness.measure(size_rows, data_paths, rounds=rounds_for(s), round_s=0.4 if s.name == "docs" else 1.5,
                        log=lambda m: print(m, flush=True), cores=cores_of[s.name])
    shutil.rmtree(folder, ignore_errors=True)
    peaks = {s.name: harness.peak_flops([r for r in rows if r.size.name == s.name]) for s in size_list}
    best = {s.name: harness.peak_flops([r for r in rows if r.size.name == s.name], best=True) for s in size_list}
    background = {s.name: sorted(b for r in rows if r.size.name == s.name for b in r.background) for s in size_list}
    table, records = report(rows, peaks)
    elapsed = time.perf_counter() - started
    print()
    print(f"float32 on {harness.cpu_name()}, {_cpu_count()} cores; matmul peak: 2048x2048, the faster of numpy and jax, "
          "median over the rounds (best round)")
    for s in size_list:
        n_cores = len(cores_of[s.name]) if cores_of[s.name] else _cpu_count()
        bg = background[s.name]
        load = f"other processes kept {bg[len(bg) // 2]:.2f} cores busy (median over rounds; max {bg[-1]:.2f})" if bg else ""
        print(f"  {s.name}: {n_cores} core{'s' if n_cores > 1 else ''}, peak {fmt(peaks[s.name] and peaks[s.name] / 1e9, '.1f')} "
              f"({fmt(best[s.name] and best[s.name] / 1e9, '.1f')}) GFLOP/s; {load}"
              + ("; multi-threaded rows suffer most, try --cores 1" if bg and bg[len(bg) // 2] > 0.25 and n_cores > 1 else ""))
    print(table)
    print("throughput: median over rounds; × eager / × compile: that PyTorch row's step time over this row's (>1 = faster);")
    print("1st step: fresh process, imports + model + compile + one step (* = process already warm from the other step);")
    print("GFLOP/s and util: hand-counted matmul FLOPs per step (3x forward; XLA's cost analysis agrees within 5%,")
    print("  see the JSON) / median step time, and that rate over the matmul peak.")
    print(f"total {elapsed:.0f} s")
    if args.json:
        import jax
        out = {"peak_flops": peaks, "peak_flops_best_round": best, "rounds": {s.name: rounds_for(s) for s in size_list},
               "quick": args.quick, "seconds": elapsed,
               "cores": {n: sorted(c) if c else None for n, c in cores_of.items()},
               "background_cores_median": {n: bg[len(bg) // 2] if bg else None for n, bg in background.items()},
               "platform": platform.platform(), "cpus": _cpu_count(), "jax": jax.__version__,
               "torch": _torch_version(), "sizes": [s.__dict__ | {"max_predictions": s.max_predictions} for s in size_list],
               "peak_rows": [r.to_json() for r in rows if r.impl == "matmul"], "rows": records}
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


def _cpu_count() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _torch_version():
    if importlib.util.find_spec("torch") is None:
        return None
    from importlib.metadata import version
    return version("torch")


if __name__ == "__main__":
    sys.exit(main())
