"""What each optimisation of the masked-prediction training step gains, measured
against the library as it is, and what a few further ideas would add.

    python -m benchmarks.variants [--json out.json] [--quick] [--groups code,flags,shapes,large,startup] [--cores N]

The library's step (`learnjax.training.loops.train_masked_prediction`) has three changes in:
every Linear and the tied output head run on a 2-D (tokens, features) array
(`learnjax.models.transformer.per_token`); the accuracy is computed with a max and a gather
instead of an argmax; and the loop calls `fused_masked_prediction_step`, a `jax.jit`
of the split state with the masking fused in and the state donated. Each
"undo" variant reverts one of them (or one part of the fused step) and "all
undone" is the library as it was before them; the "+" variants are ideas not
adopted. Every variant trains the same model on the same batches and runs in
its own fresh process; each group below is one interleaved run with the
library's loop as its baseline and PyTorch eager as a yardstick, so every
change is read as a ratio measured at the same time as its baseline.

- code: the ablations, then `jax.lax.scan` over several steps per call,
  attention computed heads-first, the token embedding looked up by a one-hot
  matmul (its gradient a matmul instead of a scatter-add), and model and
  optimizer state built by one compiled call.
- flags: XLA CPU flags (all checked to exist in jaxlib 0.10 by `XLA_FLAGS=--help`).
- shapes: batch size.
- large: the larger model, where matmuls dominate: the same ablations, the
  one-hot embedding and the flags that matter for big matrix products.
- startup: time to the first finished step in a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import Row, Runner

# ---------------------------------------------------------------- ideas not adopted
# (The library as it was before, the 3-D products and the argmax accuracy, is
# the Performance page's: `benchmarks.performance`.)


def heads_first_attention(self, x, allowed, cache=None, at=None):
    """`learnjax.models.transformer.SelfAttention.__call__` (training: no cache) with q, k, v
    moved to (B, H, T, Dh) by one transpose, so that both attention products batch
    over leading axes and XLA's backward pass needs fewer layout copies. Same
    parameters, same arithmetic."""
    import jax
    import jax.numpy as jnp

    from learnjax.models.transformer import per_token

    B, T, D = x.shape
    H = self.n_heads
    q, k, v = per_token(self.qkv, x).reshape(B, T, 3, H, D // H).transpose(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
    scores = jnp.einsum("bhqe,bhke->bhqk", q, k) / jnp.sqrt(D // H)
    scores = jnp.where(allowed[:, None], scores, jnp.finfo(scores.dtype).min)
    attended = jnp.einsum("bhqk,bhke->bhqe", jax.nn.softmax(scores, axis=-1), v)
    return per_token(self.proj, attended.transpose(0, 2, 1, 3).reshape(B, T, D)), cache


def one_hot_embed_class():
    """An `nnx.Embed` whose lookup is a one-hot (tokens, V) x (V, D) matmul: the
    same values, but the table's gradient becomes a matmul instead of a
    scatter-add of the token gradients into (V, D)."""
    import jax
    from flax import nnx

    class OneHotEmbed(nnx.Embed):
        def __call__(self, inputs):
            one_hot = jax.nn.one_hot(inputs.reshape(-1), self.num_embeddings, dtype=self.embedding.dtype)
            return (one_hot @ self.embedding[...]).reshape(*inputs.shape, -1)

    return OneHotEmbed


# ---------------------------------------------------------------- variant runners (worker side)

@dataclasses.dataclass(frozen=True)
class Options:
    # fused: the library's fused_masked_prediction_step; no_donate: the same without donation;
    # mask_outside: a donated step of the split state on a batch masked by a separate call;
    # cached_partial: the loop before, nnx.cached_partial(masked_prediction_step, ...) on a masked batch.
    loop: str = "fused"
    flat: bool = True  # 2-D matmuls (learnjax.models.transformer.per_token); False: each layer on the 3-D array
    argmax: bool = False  # accuracy from an argmax, as before
    scan: int = 0  # steps per compiled call (0: one step, no scan)
    heads_first: bool = False
    one_hot_embed: bool = False
    jit_init: bool = False  # build model and optimizer state in one compiled call


CONTROL = "library step (control)"
UNDONE = "all undone (library before)"
VARIANTS: dict[str, Options] = {
    # The library's fused step called by this file's loop, as the ablations are: their true baseline.
    CONTROL: Options(),
    # One change reverted at a time: how far below the control, what that change gains.
    "undo 2-D matmuls (3-D Linear)": Options(flat=False),
    "undo max accuracy (argmax)": Options(argmax=True),
    "undo fused step (cached_partial loop)": Options(loop="cached_partial"),
    "undo donation": Options(loop="no_donate"),
    "undo fused masking": Options(loop="mask_outside"),
    UNDONE: Options(loop="cached_partial", flat=False, argmax=True),
    # Not adopted.
    "+ scan 10 steps/call": Options(scan=10),
    "+ heads-first attention": Options(heads_first=True),
    "+ one-hot embedding lookup": Options(one_hot_embed=True),
    "+ jit init": Options(jit_init=True),
}
ABLATIONS = [n for n in VARIANTS if n.startswith(("undo", "all undone"))]


class Variant(Runner):
    def __init__(self, opts: Options, size, data):
        import jax
        import numpy as np
        import optax
        from flax import nnx

        import learnjax.models.transformer
        from benchmarks.performance import accuracy_from_argmax, products_on_3d_arrays, swapped
        from learnjax.models.transformer import MaskedLanguageModel, TransformerConfig
        from learnjax.training.loops import STEP_COMPILER_OPTIONS, fused_masked_prediction_step, warmup_cosine
        from learnjax.training.masking import masked_batch
        from learnjax.training.steps import masked_prediction_step, masked_prediction_update

        # Module globals, looked up when the step is traced (at its first call):
        # switched for the life of this worker process, which runs only this variant.
        self.switches = contextlib.ExitStack()
        if not opts.flat:
            self.switches.enter_context(products_on_3d_arrays())
        if opts.argmax:
            self.switches.enter_context(accuracy_from_argmax())
        if opts.heads_first:
            self.switches.enter_context(swapped(learnjax.models.transformer.SelfAttention, "__call__", heads_first_attention))
        self.jax, self.np, self.opts = jax, np, opts
        config = TransformerConfig(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
        tx = optax.adamw(warmup_cosine(size.learning_rate, 1800, 100), weight_decay=0.01)

        def create():
            model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
            if opts.one_hot_embed:
                model.encoder.token_embed.__class__ = one_hot_embed_class()  # same parameters, another lookup
            return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

        # Eagerly, every initializer of every new shape is its own XLA compile
        # (about 25 of them); under jit they are one program.
        self.model, self.optimizer = nnx.jit(create)() if opts.jit_init else create()
        self.tokens, self.segments, self.idx = data["mlm_tokens"], data["mlm_segments"], data["mlm_idx"]
        key = jax.random.key(0)
        static = {"vocab_size": size.vocab_size, "rate": size.mask_rate, "max_predictions": size.max_predictions}
        mask = lambda i, t, s: masked_batch(jax.random.fold_in(key, i), t, s, **static)
        self.steps_per_call = max(1, opts.scan)

        if opts.loop == "cached_partial":
            step = nnx.cached_partial(masked_prediction_step, self.model, self.optimizer)
            self.step = lambda i, t, s: step(mask(i, t, s))
            return
        graphdef, self.state = nnx.split((self.model, self.optimizer))
        fused = fused_masked_prediction_step.__wrapped__  # the plain function under the library's jax.jit

        def one(state, i, t, s):
            return fused(state, key, i, t, s, graphdef=graphdef, **static)

        def scanned(state, i, tokens, segments):  # tokens, segments: (K, B, T)
            def each(state, xs):
                state, loss, accuracy = one(state, *xs)
                return state, (loss, accuracy)
            state, (losses, accuracies) = jax.lax.scan(each, state, (i + jax.numpy.arange(opts.scan), tokens, segments))
            return state, losses[-1], accuracies[-1]

        def update(state, batch):
            model, optimizer = nnx.merge(graphdef, state)
            loss, accuracy = masked_prediction_update(model, optimizer, batch)
            return nnx.state((model, optimizer)), loss, accuracy

        # The library's compiler options, so that each variant differs only in what it undoes.
        if opts.scan:
            compiled = jax.jit(scanned, donate_argnums=0, compiler_options=STEP_COMPILER_OPTIONS)
        elif opts.loop == "mask_outside":
            donated_update = jax.jit(update, donate_argnums=0, compiler_options=STEP_COMPILER_OPTIONS)
            compiled = lambda state, i, t, s: donated_update(state, mask(i, t, s))
        elif opts.loop == "no_donate":
            compiled = jax.jit(one, compiler_options=STEP_COMPILER_OPTIONS)
        else:
            compiled = lambda state, i, t, s: fused_masked_prediction_step(state, key, i, t, s, graphdef=graphdef, **static)

        def step(i, t, s):
            self.state, loss, accuracy = compiled(self.state, i, t, s)
            return loss, accuracy
        self.step = step

    def call(self, i):
        # With scan, rows (K, B) of the index batches: K steps' worth in one call.
        idx = self.idx[(i + self.np.arange(self.opts.scan)) % len(self.idx) if self.opts.scan else i % len(self.idx)]
        return self.step(i, self.tokens[idx], self.segments[idx])

    def sync(self, pending):
        return float(self.jax.device_get(pending)[-1][0])


def build(impl: str, objective: str, size, data) -> Runner:
    from benchmarks import bench_steps

    if impl in VARIANTS:
        return Variant(VARIANTS[impl], size, data)
    return bench_steps.build(impl, objective, size, data)


# ---------------------------------------------------------------- groups (parent side)

FLAGS = {
    "use_xnnpack=false": "--xla_cpu_use_xnnpack=false",
    "xnn_fusion_type=dot": "--xla_cpu_experimental_xnn_fusion_type=dot",
    "ynn_fusion_type=dot": "--xla_cpu_experimental_ynn_fusion_type=dot",
    "xnn_graph_fusion GREEDY": "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "use_onednn=true": "--xla_cpu_use_onednn=true",
    "multi_thread_eigen=false": "--xla_cpu_multi_thread_eigen=false",
    "prefer_vector_width=512": "--xla_cpu_prefer_vector_width=512",
    "enable_fast_math=true": "--xla_cpu_enable_fast_math=true",
    "opt_preset FAST_COMPILE": "--xla_cpu_opt_preset=FAST_COMPILE",
}
LIBRARY = "library: train_masked_prediction"


def variant_row(name: str, impl: str, size, **kw) -> Row:
    return Row(name, impl, "masked", size, module="variants", **kw)


def group_rows(group: str, docs, large, have_torch: bool, quick: bool, only: list[str] | None = None,
               code_size: str = "docs") -> list[Row]:
    size = large if group == "large" or (group == "code" and code_size == "large") else docs
    rows = [variant_row(LIBRARY, "jax-jit", size)]
    if have_torch:
        rows.append(variant_row("PyTorch eager", "torch-eager", size))
    if group == "code":
        quick_names = [CONTROL, "undo 2-D matmuls (3-D Linear)", "undo max accuracy (argmax)",
                       "undo fused step (cached_partial loop)", UNDONE, "+ one-hot embedding lookup"]
        names = only or (quick_names if quick else list(VARIANTS))
        rows += [variant_row(n, n, size) for n in names]
    elif group == "flags":
        names = ["use_xnnpack=false", "multi_thread_eigen=false"] if quick else [n for n in FLAGS if "FAST_COMPILE" not in n]
        rows += [variant_row(f"XLA {n}", "jax-jit", size, env={"XLA_FLAGS": FLAGS[n]}) for n in names]
    elif group == "shapes":
        # The library's step in one loop at every batch size (train_masked_prediction as a
        # whole is timed 10 steps per call only at the docs batch size).
        rows.append(variant_row(CONTROL, CONTROL, size))
        for b in (32, 128, 256):
            rows.append(variant_row(f"library step, batch {b}", CONTROL, dataclasses.replace(size, batch_size=b)))
        if have_torch:
            rows.append(variant_row("PyTorch eager, batch 128", "torch-eager", dataclasses.replace(size, batch_size=128)))
    elif group == "startup":
        # Only the first step counts here; three fresh processes of each.
        rows = []
        configs = [(LIBRARY, "jax-jit", {}), (UNDONE, UNDONE, {}), ("+ jit init", "+ jit init", {}),
                   ("library, XLA opt_preset FAST_COMPILE", "jax-jit", {"XLA_FLAGS": FLAGS["opt_preset FAST_COMPILE"]}),
                   ("library, XLA backend_optimization_level=1", "jax-jit", {"XLA_FLAGS": "--xla_backend_optimization_level=1"})]
        for k in range(1 if quick else 3):
            rows += [variant_row(f"{label} #{k + 1}", impl, size, env=env) for label, impl, env in configs]
        if have_torch:
            rows += [variant_row(f"PyTorch eager #{k + 1}", "torch-eager", size) for k in range(1 if quick else 2)]
    elif group == "large":
        names = [CONTROL, "undo 2-D matmuls (3-D Linear)", UNDONE, "+ one-hot embedding lookup"] if quick else \
            [CONTROL, *ABLATIONS, "+ one-hot embedding lookup"]
        rows += [variant_row(n, n, size) for n in names]
        for n in ([] if quick else ["use_xnnpack=false", "use_onednn=true", "xnn_graph_fusion GREEDY", "multi_thread_eigen=false"]):
            rows.append(variant_row(f"library, XLA {n}", "jax-jit", size, env={"XLA_FLAGS": FLAGS[n]}))
    for r in rows:  # data files are per size name; batch-size variants draw their own
        if r.size.batch_size != size.batch_size:
            r.size = dataclasses.replace(r.size, name=f"{size.name}-b{r.size.batch_size}")
    return rows


LEGEND = ("× library: the library's time per token over the row's, median of per-round pairs (> 1: faster than the\n"
          "library as it is); (best): the same from the best rounds. Read an \"undo\" row against the control row, which\n"
          "runs the library's step in the same loop: below it is what that change gains.\n")


def paired_ratio(row: Row, other: Row | None) -> float | None:
    """Median over rounds of other's time per token / row's time per token, each
    pair taken in the same round (seconds apart), so that slow drifts in the
    background load cancel; > 1 means `row` is faster."""
    if other is None or not other.step_s or not row.step_s:
        return None
    n = min(len(row.step_s), len(other.step_s))
    per_token = lambda r, k: r.step_s[k] / r.size.tokens_per_step
    return statistics.median(per_token(other, k) / per_token(row, k) for k in range(n))


def report(rows: list[Row], base_label: str) -> tuple[str, list[dict]]:
    base = next(r for r in rows if r.label == base_label)
    torch_row = next((r for r in rows if r.label == "PyTorch eager"), None)
    lines = [f"{'variant':40s} {'tok/s':>8s} {'ms/step':>8s} {'best ms':>8s} {'× library':>9s} {'(best)':>6s} "
             f"{'× torch eager':>13s} {'1st step s':>10s}"]
    out = []
    for r in rows:
        if r.error or not r.step_s:
            lines.append(f"{r.label:40s} FAILED: {(r.error or 'no rounds')[:90]}")
            out.append(r.to_json())
            continue
        tps = r.size.tokens_per_step / r.median_step_s
        best_ratio = (base.best_step_s / base.size.tokens_per_step) / (r.best_step_s / r.size.tokens_per_step)
        lines.append(f"{r.label:40s} {tps:8,.0f} {r.median_step_s * 1e3:8.2f} {r.best_step_s * 1e3:8.2f} "
                     f"{harness_fmt(paired_ratio(r, base), '9.2f')} {best_ratio:6.2f} "
                     f"{harness_fmt(paired_ratio(r, torch_row), '13.2f')} {harness_fmt(r.first_step_s, '10.1f')}")
        out.append({**r.to_json(), "tokens_per_s": tps, "ratio_to_library": paired_ratio(r, base),
                    "ratio_to_library_best": best_ratio, "ratio_to_torch_eager": paired_ratio(r, torch_row)})
    return "\n".join(lines), out


def report_startup(rows: list[Row]) -> tuple[str, list[dict]]:
    """First-step seconds per configuration: median over its fresh processes."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.label.rsplit(" #", 1)[0], []).append(r)
    base = statistics.median(r.first_step_s for r in groups[LIBRARY] if r.first_step_s)
    lines = [f"{'configuration':52s} {'1st step s':>10s} {'each process':>22s} {'× library':>9s} {'ms/step after':>13s}"]
    out = []
    for label, rs in groups.items():
        firsts = [r.first_step_s for r in rs if r.first_step_s]
        if not firsts:
            lines.append(f"{label:52s} FAILED: {rs[0].error}")
            continue
        first = statistics.median(firsts)
        steps = [r.median_step_s for r in rs if r.step_s]
        lines.append(f"{label:52s} {first:10.2f} {' '.join(f'{x:.1f}' for x in firsts):>22s} {base / first:9.2f} "
                     f"{harness_fmt(steps and statistics.median(steps) * 1e3, '13.1f')}")
        out.append({"label": label, "first_step_s": first, "first_step_s_each": firsts, "ratio_to_library": base / first,
                    "median_step_s": statistics.median(steps) if steps else None})
    return "\n".join(lines), out


def harness_fmt(x, spec):
    return "—".rjust(int(spec.split(".")[0])) if x is None else format(x, spec)


def main(argv=None) -> int:
    import importlib.util

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--groups", default="code,flags,shapes,large")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--cores", default="auto",
                        help="pin every worker to this many cores; auto (default): all, or 1 when the machine is busy")
    parser.add_argument("--only", help="code group: comma-separated names from VARIANTS instead of all")
    parser.add_argument("--code-size", default="docs", choices=["docs", "large"], help="model size of the code group")
    args = parser.parse_args(argv)
    have_torch = importlib.util.find_spec("torch") is not None
    if not have_torch:
        print("torch is not installed: no PyTorch yardstick (pip install torch==2.13.0)")
    docs, large = harness.docs_size(), harness.LARGE
    cores = harness.choose_cores(args.cores)
    rounds = args.rounds or (3 if args.quick else 15)
    folder = Path(tempfile.mkdtemp(prefix="learnjax-variants-"))
    started, results = time.perf_counter(), {}
    for group in args.groups.split(","):
        rows = group_rows(group, docs, large, have_torch, args.quick, args.only.split(",") if args.only else None,
                          args.code_size)
        sizes = {r.size.name: r.size for r in rows}
        paths = {}
        for name, s in sizes.items():
            p = folder / f"data-{name}.npz"
            if not p.exists():
                import numpy as np
                np.savez(p, **harness.make_data(s))
            paths[name] = str(p)
        is_large = rows[0].size.name == "large"
        n_rounds = args.rounds or (2 if args.quick else 5) if is_large else rounds  # large steps take seconds
        if group == "startup":
            n_rounds = 2
        print(f"[{group}] {len(rows)} variants, {n_rounds} rounds", flush=True)
        harness.measure(rows, paths, rounds=n_rounds, round_s=1.0 if is_large else 0.25,
                        log=lambda m: print(m, flush=True), info_objectives=False, cores=cores)
        table, out = report_startup(rows) if group == "startup" else report(rows, LIBRARY)
        bg = sorted(b for r in rows for b in r.background)
        load = f"; other processes kept {bg[len(bg) // 2]:.2f} cores busy (median over rounds), max {bg[-1]:.2f}" if bg else ""
        print(f"\n== {group}: {rows[0].size.label()}{load}\n{table}\n{LEGEND if group != 'startup' else ''}", flush=True)
        results[group] = out
    shutil.rmtree(folder, ignore_errors=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"cores": sorted(cores) if cores else None, "groups": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
