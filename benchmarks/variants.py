"""Ways to make the jit-compiled masked-prediction step faster, measured side by side.

    python benchmarks/variants.py [--json out.json] [--quick] [--groups code,flags,shapes,large] [--cores N]

Every variant trains the same model on the same batches as
`learnjax.training.train_masked_lm` and runs in its own fresh process; each
group below is one interleaved run with its own baseline (the library's loop as
it is) and PyTorch eager as a yardstick, so that every change is read as a
ratio measured at the same time as its baseline.

- code: how the step is called: plain `nnx.jit` call, `nnx.cached_partial` (the
  library's loop), buffer donation, tree mode (`nnx.jit_partial(graph=False)`),
  a functional `jax.jit` over split state, masking fused into the step, several
  steps per call with `jax.lax.scan`; and two model-side changes: accuracy
  without an argmax, and attention computed heads-first.
- flags: XLA CPU flags (all checked to exist in jaxlib 0.10 by `XLA_FLAGS=--help`).
- shapes: batch size and prediction slots per row.
- large: the larger model, where matmuls dominate: the best code variant,
  donation and the flags that matter for big matrix products.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Row, Runner  # noqa: E402

# ---------------------------------------------------------------- model-side alternatives


def accuracy_without_argmax(logits, targets, weights, n_scored):
    """A hit when the target's score is the row maximum: the same as argmax == target
    except on exact ties. XLA CPU lowers argmax to a slow variadic (value, index)
    reduction over the vocabulary; a max and a gather are cheap."""
    import jax.numpy as jnp

    target_score = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return ((target_score >= logits.max(-1)) * weights).sum() / n_scored


def masked_loss(model, batch, *, fast_accuracy: bool):
    """`learnjax.steps.masked_prediction_loss`, with the accuracy computed either way."""
    import jax.numpy as jnp
    import optax

    from learnjax.steps import masked_prediction_loss

    if not fast_accuracy:
        return masked_prediction_loss(model, batch)
    logits = model(batch["inputs"], batch["segments"], batch["positions"])
    targets, weights = batch["targets"], batch["weights"]
    per_token = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    n_scored = jnp.maximum(weights.sum(), 1.0)
    loss = (per_token * weights).sum() / n_scored
    return loss, accuracy_without_argmax(logits, targets, weights, n_scored)


def heads_first_attention(self, x, allowed):
    """`learnjax.model.SelfAttention.__call__` with q, k, v produced directly in
    (B, H, T, Dh) layout by one einsum against the same (D, 3D) kernel, and the
    output projection contracting heads and head dimension at once. The same
    parameters and the same arithmetic; no transposes around the attention
    products, so XLA's backward pass needs fewer layout copies."""
    import jax
    import jax.numpy as jnp

    B, T, D = x.shape
    H = self.n_heads
    kernel = self.qkv.kernel[...].reshape(D, 3, H, D // H)
    bias = self.qkv.bias[...].reshape(3, 1, H, 1, D // H)
    q, k, v = jnp.einsum("btd,dshe->sbhte", x, kernel) + bias  # 3 x (B, H, T, Dh)
    scores = jnp.einsum("bhqe,bhke->bhqk", q, k) / jnp.sqrt(D // H)
    scores = jnp.where(allowed[:, None], scores, jnp.finfo(scores.dtype).min)
    attended = jnp.einsum("bhqk,bhke->bhqe", jax.nn.softmax(scores, axis=-1), v)
    proj = self.proj.kernel[...].reshape(H, D // H, D)
    return jnp.einsum("bhte,hed->btd", attended, proj) + self.proj.bias[...]


def use_flat_dense() -> None:
    """Applies every `nnx.Linear` (and the tied output head) to a 2-D (tokens, features)
    array. The same parameters and arithmetic, but autodiff of a 3-D dot_general
    gives weight gradients contracting two dimensions, which XLA CPU runs as a
    transposed Eigen dot behind layout copies; contracting the one
    flattened dimension goes to the fast matmul path. PyTorch's Linear flattens
    the same way internally."""
    from flax import nnx

    linear, attend = nnx.Linear.__call__, nnx.Embed.attend

    def flat_linear(self, x):
        if x.ndim <= 2:
            return linear(self, x)
        return linear(self, x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)

    def flat_attend(self, query):
        if query.ndim <= 2:
            return attend(self, query)
        return attend(self, query.reshape(-1, query.shape[-1])).reshape(*query.shape[:-1], -1)

    nnx.Linear.__call__, nnx.Embed.attend = flat_linear, flat_attend


def heads_first_flat_attention(self, x, allowed):
    """Heads-first attention whose projections are flat matmuls: q, k, v from one
    (B*T, D) x (D, 3D) product, moved to (3, B, H, T, Dh) by a transpose."""
    import jax
    import jax.numpy as jnp

    B, T, D = x.shape
    H = self.n_heads
    qkv = self.qkv(x.reshape(B * T, D)).reshape(B, T, 3, H, D // H)
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
    scores = jnp.einsum("bhqe,bhke->bhqk", q, k) / jnp.sqrt(D // H)
    scores = jnp.where(allowed[:, None], scores, jnp.finfo(scores.dtype).min)
    attended = jnp.einsum("bhqk,bhke->bhqe", jax.nn.softmax(scores, axis=-1), v)
    return self.proj(attended.transpose(0, 2, 1, 3).reshape(B * T, D)).reshape(B, T, D)


# ---------------------------------------------------------------- variant runners (worker side)

@dataclasses.dataclass(frozen=True)
class Options:
    call: str = "cached_partial"  # nnx_jit | cached_partial | jit_partial_tree | functional
    donate: bool = False
    fuse_masking: bool = False
    scan: int = 0  # steps per compiled call (0: one step, no scan)
    fast_accuracy: bool = False
    heads_first: bool = False
    flat: bool = False  # matmuls on 2-D arrays (use_flat_dense)
    jit_init: bool = False  # build model and optimizer state in one compiled call


_FUSED = Options(call="functional", donate=True, fuse_masking=True)
replace = dataclasses.replace

VARIANTS: dict[str, Options] = {
    # How the step is called; the model as in learnjax.model.
    "nnx.jit call": Options(call="nnx_jit"),
    "cached_partial": Options(),
    "cached_partial + donate": Options(donate=True),
    "jit_partial tree mode": Options(call="jit_partial_tree"),
    "jit_partial tree + donate": Options(call="jit_partial_tree", donate=True),
    "functional jit": Options(call="functional"),
    "functional + donate": Options(call="functional", donate=True),
    "functional + donate + fused mask": _FUSED,
    "... + scan 10 steps/call": replace(_FUSED, scan=10),
    # What the step computes, called as the library does (cached_partial).
    "cached_partial + max accuracy": Options(fast_accuracy=True),
    "cached_partial + heads-first attn": Options(heads_first=True),
    "cached_partial + max acc + heads-first": Options(fast_accuracy=True, heads_first=True),
    "cached_partial + flat dense": Options(flat=True),
    "cached_partial + flat + max accuracy": Options(flat=True, fast_accuracy=True),
    "cached_partial + flat + heads-first": Options(flat=True, heads_first=True),
    # Both kinds together.
    "fused + flat + max accuracy": replace(_FUSED, flat=True, fast_accuracy=True),
    "fused + flat + max acc + heads-first": replace(_FUSED, flat=True, fast_accuracy=True, heads_first=True),
    "fused + flat + max acc + jit init": replace(_FUSED, flat=True, fast_accuracy=True, jit_init=True),
    "cached_partial + jit init": Options(jit_init=True),
    "fused + scan 10 + flat + max accuracy": replace(_FUSED, scan=10, flat=True, fast_accuracy=True),
}


# The best combination measured; bench_steps.py shows it as "learnjax proposed".
PROPOSED = VARIANTS["fused + flat + max accuracy"]


class Variant(Runner):
    def __init__(self, opts: Options, size, data):
        import jax
        import numpy as np
        import optax
        from flax import nnx

        import learnjax.model as model_module
        from learnjax.masking import masked_batch
        from learnjax.model import EncoderConfig, MaskedLanguageModel
        from learnjax.training import warmup_cosine

        if opts.flat:
            use_flat_dense()
        if opts.heads_first:
            model_module.SelfAttention.__call__ = heads_first_flat_attention if opts.flat else heads_first_attention
        self.jax, self.np, self.opts, self.size = jax, np, opts, size
        config = EncoderConfig(size.vocab_size, size.max_len, size.d_model, size.n_layers, size.n_heads, size.d_ff)
        tx = optax.adamw(warmup_cosine(size.learning_rate, 1800, 100), weight_decay=0.01)
        if opts.jit_init:
            # Eagerly, every initializer of every new shape is its own XLA
            # compile (about 25 of them); under jit they are one program.
            @nnx.jit
            def create():
                model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
                return model, nnx.Optimizer(model, tx, wrt=nnx.Param)
            self.model, self.optimizer = create()
        else:
            self.model = MaskedLanguageModel(config, rngs=nnx.Rngs(0))
            self.optimizer = nnx.Optimizer(self.model, tx, wrt=nnx.Param)
        self.tokens, self.segments, self.idx = data["mlm_tokens"], data["mlm_segments"], data["mlm_idx"]
        self.key = jax.random.key(0)
        V, rate, P = size.vocab_size, size.mask_rate, size.max_predictions
        self.mask = lambda key, t, s: masked_batch(key, t, s, V, rate, P)
        self.steps_per_call = max(1, opts.scan)

        def body(model, optimizer, batch):
            grad_fn = nnx.value_and_grad(lambda m, b: masked_loss(m, b, fast_accuracy=opts.fast_accuracy), has_aux=True)
            (loss, accuracy), grads = grad_fn(model, batch)
            optimizer.update(model, grads)
            return loss, accuracy

        donate = (0, 1) if opts.donate else None
        if opts.call == "nnx_jit":
            step = nnx.jit(body, donate_argnums=donate)
            self.step = lambda batch: step(self.model, self.optimizer, batch)
        elif opts.call == "cached_partial":
            self.step = nnx.cached_partial(nnx.jit(body, donate_argnums=donate), self.model, self.optimizer)
        elif opts.call == "jit_partial_tree":
            self.step = nnx.jit_partial(body, self.model, self.optimizer, graph=False, donate_argnums=(0,) if opts.donate else None)
        else:
            self._functional(nnx, body)

    def _functional(self, nnx, body):
        """Split once; the compiled step maps (state, batch) to (state, metrics)."""
        jax, opts = self.jax, self.opts
        graphdef, self.state = nnx.split((self.model, self.optimizer))

        def one(state, batch):
            model, optimizer = nnx.merge(graphdef, state)
            loss, accuracy = body(model, optimizer, batch)
            return nnx.state((model, optimizer)), loss, accuracy

        def fused(state, step, tokens, segments):
            return one(state, self.mask(jax.random.fold_in(self.key, step), tokens, segments))

        def scanned(state, step, tokens, segments):  # tokens, segments: (K, B, T)
            def each(state, xs):
                i, t, s = xs
                state, loss, accuracy = fused(state, step + i, t, s)
                return state, (loss, accuracy)
            state, (losses, accuracies) = jax.lax.scan(each, state, (jax.numpy.arange(opts.scan), tokens, segments))
            return state, losses[-1], accuracies[-1]

        fn = scanned if opts.scan else fused if opts.fuse_masking else one
        self.compiled = jax.jit(fn, donate_argnums=(0,) if opts.donate else ())

    def call(self, i):
        opts = self.opts
        if opts.scan:
            idx = self.idx[(i + self.np.arange(opts.scan)) % len(self.idx)]  # (K, B)
            self.state, loss, accuracy = self.compiled(self.state, i, self.tokens[idx], self.segments[idx])
            return loss, accuracy
        idx = self.idx[i % len(self.idx)]
        if opts.call == "functional" and opts.fuse_masking:
            self.state, loss, accuracy = self.compiled(self.state, i, self.tokens[idx], self.segments[idx])
            return loss, accuracy
        batch = self.mask(self.jax.random.fold_in(self.key, i), self.tokens[idx], self.segments[idx])
        if opts.call == "functional":
            self.state, loss, accuracy = self.compiled(self.state, batch)
            return loss, accuracy
        return self.step(batch)

    def sync(self, pending):
        return float(self.jax.device_get(pending)[-1][0])


def build(impl: str, objective: str, size, data) -> Runner:
    import bench_steps

    if impl in VARIANTS:
        return Variant(VARIANTS[impl], size, data)
    return bench_steps.build(impl, objective, size, data)


# ---------------------------------------------------------------- groups (parent side)

FLAGS = {
    # Deprecated in jaxlib 0.10 ("Deprecated." in --help): the thunk runtime is the only one left.
    "use_thunk_runtime=false": "--xla_cpu_use_thunk_runtime=false",
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


def variant_row(name: str, impl: str, size, **kw) -> Row:
    return Row(name, impl, "masked", size, module="variants", **kw)


def group_rows(group: str, docs, large, have_torch: bool, quick: bool, only: list[str] | None = None,
               code_size: str = "docs") -> list[Row]:
    size = large if group == "large" or (group == "code" and code_size == "large") else docs
    rows = [variant_row("library: train_masked_lm", "jax-jit", size)]
    if have_torch:
        rows.append(variant_row("PyTorch eager", "torch-eager", size))
    if group == "code":
        names = only or (list(VARIANTS) if not quick else ["nnx.jit call", "cached_partial", "functional + donate + fused mask",
                                                           "cached_partial + flat dense", "fused + flat + max accuracy"])
        rows += [variant_row(n, n, size) for n in names]
    elif group == "flags":
        names = list(FLAGS) if not quick else ["use_xnnpack=false", "multi_thread_eigen=false"]
        rows += [variant_row(f"XLA {n}", "cached_partial", size, env={"XLA_FLAGS": FLAGS[n]}) for n in names]
        rows.insert(1, variant_row("cached_partial (no flag)", "cached_partial", size))
    elif group == "shapes":
        rows.append(variant_row("cached_partial", "cached_partial", size))
        for b in (32, 128, 256):
            rows.append(variant_row(f"cached_partial, batch {b}", "cached_partial", dataclasses.replace(size, batch_size=b)))
        best = "fused + flat + max accuracy"
        rows.append(variant_row(best, best, size))
        rows.append(variant_row(f"{best}, batch 128", best, dataclasses.replace(size, batch_size=128)))
        if have_torch:
            rows.append(variant_row("PyTorch eager, batch 128", "torch-eager", dataclasses.replace(size, batch_size=128)))
    elif group == "startup":
        # Only the first step counts here; three fresh processes of each.
        rows = []
        configs = [("library: train_masked_lm", "jax-jit", {}), ("cached_partial", "cached_partial", {}),
                   ("cached_partial + jit init", "cached_partial + jit init", {}),
                   ("cached_partial, XLA opt_preset FAST_COMPILE", "cached_partial", {"XLA_FLAGS": FLAGS["opt_preset FAST_COMPILE"]}),
                   ("cached_partial, XLA backend_optimization_level=1", "cached_partial", {"XLA_FLAGS": "--xla_backend_optimization_level=1"}),
                   ("fused + flat + max accuracy", "fused + flat + max accuracy", {}),
                   ("fused + flat + max acc + jit init", "fused + flat + max acc + jit init", {})]
        for k in range(1 if quick else 3):
            rows += [variant_row(f"{label} #{k + 1}", impl, size, env=env) for label, impl, env in configs]
        if have_torch:
            rows += [variant_row(f"PyTorch eager #{k + 1}", "torch-eager", size) for k in range(1 if quick else 2)]
    elif group == "large":
        names = ["cached_partial", "cached_partial + donate", "functional + donate + fused mask", "cached_partial + max accuracy",
                 "cached_partial + flat dense", "fused + flat + max accuracy"]
        rows += [variant_row(n, n, size) for n in (names if not quick else names[-2:])]
        for n in ([] if quick else ["use_xnnpack=false", "use_onednn=true", "xnn_graph_fusion GREEDY", "multi_thread_eigen=false"]):
            rows.append(variant_row(f"fused + flat + max acc, XLA {n}", "fused + flat + max accuracy", size, env={"XLA_FLAGS": FLAGS[n]}))
    for r in rows:  # data files are per size name; batch-size variants draw their own
        if r.size.batch_size != size.batch_size:
            r.size = dataclasses.replace(r.size, name=f"{size.name}-b{r.size.batch_size}")
    return rows


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
    base = statistics.median(r.first_step_s for r in groups["library: train_masked_lm"] if r.first_step_s)
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
    parser.add_argument("--only", help="code group: comma-separated variant names instead of all")
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
        table, out = report_startup(rows) if group == "startup" else report(rows, "library: train_masked_lm")
        bg = sorted(b for r in rows for b in r.background)
        load = f"; other processes kept {bg[len(bg) // 2]:.2f} cores busy (median over rounds), max {bg[-1]:.2f}" if bg else ""
        print(f"\n== {group}: {rows[0].size.label()}{load}\n{table}\n", flush=True)
        results[group] = out
    shutil.rmtree(folder, ignore_errors=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"cores": sorted(cores) if cores else None, "groups": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
