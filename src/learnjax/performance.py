"""What makes the masked-prediction step (and the supervised loop) fast: each
of the library's choices measured against the way it was first written, on the
docs' model.

`measure()` runs every comparison (about a minute) and returns plain data; the
Performance page shows it. Timings interleave the candidates (`learnjax.timing`),
so background load slows them alike. The PyTorch comparison lives in
`benchmarks/`, since PyTorch is not a dependency of the library.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import learnjax.model as model_code
from learnjax.masking import mask_tokens, masked_batch
from learnjax.pretraining import initial_state, compile_for_pretraining, create_model_and_optimizer, model_shapes
from learnjax.steps import masked_prediction_step, masked_prediction_update, supervised_step
from learnjax.timing import compare, other_processes_load
from learnjax.training import (
    STEP_COMPILER_OPTIONS, STEPS_PER_CALL, masking_args, adamw, batch_indices, fused_masked_prediction_step, masked_prediction_steps, train_classifier,
    train_masked_prediction,
)

# Each run in a fresh process (XLA reads its flags once, at start-up): name,
# XLA_FLAGS, and how the process starts training (see `probe`).
FRESH_PROCESS_RUNS = {
    "none (default)": ("", "library"),
    "--xla_cpu_multi_thread_eigen=false": ("--xla_cpu_multi_thread_eigen=false", "library"),
    "one after another": ("", "sequential"),
}


# --8<-- [start:every_position_step]
def every_position_update(model, optimizer, inputs, segments, targets, weights):
    """Scores the whole vocabulary at all T positions; only the hidden ones count."""

    def loss_fn(model):
        logits = model(inputs, segments)  # (B, T, V): every position
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # (B, T)
        return (losses * weights).sum() / jnp.maximum(weights.sum(), 1.0)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


every_position_step = nnx.jit(every_position_update)
"""`every_position_update`, compiled."""
# --8<-- [end:every_position_step]


# --8<-- [start:argmax_step]
@nnx.jit
def argmax_accuracy_step(model, optimizer, batch):
    """`masked_prediction_step` with the accuracy taken from an argmax."""

    def loss_fn(model):
        logits = model(batch["inputs"], batch["segments"], batch["positions"])  # (B, P, V)
        targets, weights = batch["targets"], batch["weights"]
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        n_scored = jnp.maximum(weights.sum(), 1.0)
        accuracy = ((logits.argmax(-1) == targets) * weights).sum() / n_scored
        return (losses * weights).sum() / n_scored, accuracy

    (loss, accuracy), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, accuracy
# --8<-- [end:argmax_step]


# --8<-- [start:products_on_3d_arrays]
@contextlib.contextmanager
def products_on_3d_arrays():
    """While active, a model being traced applies each Linear to (B, T, D) arrays
    directly, as the model was first written, instead of through `per_token`."""
    flat = model_code.per_token
    model_code.per_token = lambda layer, x: layer(x)
    try:
        yield
    finally:
        model_code.per_token = flat


# Its own compiled copy of the step, traced inside `products_on_3d_arrays()`.
step_with_3d_products = nnx.jit(masked_prediction_update)
# --8<-- [end:products_on_3d_arrays]


# Every choice undone: all positions, 3-D products, masking outside the step.
# (Its own compiled copy, traced inside `products_on_3d_arrays()`.)
first_written_step = nnx.jit(every_position_update)

# The fused step without buffer donation: the same program, new buffers each step.
fused_step_without_donation = jax.jit(
    fused_masked_prediction_step.__wrapped__, static_argnames=("graphdef", "vocab_size", "rate", "max_predictions"),
    compiler_options=STEP_COMPILER_OPTIONS,
)


class Setup:
    """The docs' model size and one batch of packed rows of the built-in corpus."""

    def __init__(self, batch_size: int | None = None, n_layers: int | None = None):
        from learnjax import corpus
        from learnjax.cache import foundation_model

        foundation = foundation_model()  # for its recipe and its vocabulary
        self.recipe, self.config = foundation.recipe, foundation.model.config
        if n_layers:  # a shallower model compiles faster (for tests)
            self.config = dataclasses.replace(self.config, n_layers=n_layers)
        self.batch_size = batch_size or self.recipe.batch_size
        self.tokens, self.segments = foundation.tokenizer.encode_packed(corpus.build_corpus(4_000), self.config.max_len)
        self.rows_tokens, self.rows_segments = self.tokens[: self.batch_size], self.segments[: self.batch_size]
        self.key = jax.random.key(0)
        self.static = masking_args(self.config.vocab_size, self.config.max_len, self.recipe.mask_rate)
        self.batch = masked_batch(self.key, self.rows_tokens, self.rows_segments, **self.static)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.config.max_len

    def with_batch_size(self, batch_size: int) -> Setup:
        """The same model and data, with batches of `batch_size` rows."""
        other = copy.copy(self)
        other.batch_size = batch_size
        other.rows_tokens, other.rows_segments = self.tokens[:batch_size], self.segments[:batch_size]
        other.batch = masked_batch(self.key, other.rows_tokens, other.rows_segments, **self.static)
        return other

    def optimizer(self):
        return adamw(self.recipe.learning_rate, self.recipe.steps, self.recipe.warmup_steps, 0.01)

    def fresh(self):
        """A new model and its optimizer, as pre-training builds them."""
        return create_model_and_optimizer(self.config, self.optimizer(), jax.random.key(0))

    def step_on(self, step):
        """A zero-argument call of `step(model, optimizer, batch)` on a fresh model."""
        model, optimizer = self.fresh()
        return lambda: step(model, optimizer, self.batch)

    def fused_loop(self, step_fn=fused_masked_prediction_step, nodes=None):
        """A zero-argument call of one `fused_masked_prediction_step`: masking fused in, state threaded through."""
        graphdef, state = nnx.split(nodes or self.fresh())
        counter = itertools.count()

        def call():
            nonlocal state
            state, loss, _ = step_fn(state, self.key, next(counter), self.rows_tokens, self.rows_segments, graphdef=graphdef, **self.static)
            return loss

        return call

    def library_loop(self, nodes=None):
        """A zero-argument call of one call of the library's loop: `STEPS_PER_CALL`
        steps in one compiled program (`masked_prediction_steps`); time it per step."""
        graphdef, state = nnx.split(nodes or self.fresh())
        stacked = lambda rows: np.repeat(rows[None], STEPS_PER_CALL, axis=0)
        tokens, segments = stacked(self.rows_tokens), stacked(self.rows_segments)
        counter = itertools.count(0, STEPS_PER_CALL)

        def call():
            nonlocal state
            state, (losses, _) = masked_prediction_steps(state, self.key, next(counter), tokens, segments, STEPS_PER_CALL, graphdef=graphdef, **self.static)
            return losses

        return call

    def first_written_loop(self):
        """One step as first written: mask on every position, then the step that scores them all."""
        model, optimizer = self.fresh()
        counter = itertools.count()

        def call():
            key = jax.random.fold_in(self.key, next(counter))
            inputs, targets, weights = mask_tokens(key, self.rows_tokens, self.static["vocab_size"], self.static["rate"])
            return first_written_step(model, optimizer, inputs, self.rows_segments, targets, weights)

        with products_on_3d_arrays():
            call()  # traced (and compiled) the old way
        return call

    def unfused_loop(self):
        """One step of the loop as first written: mask, then call the nnx.jit step."""
        model, optimizer = self.fresh()
        step = nnx.cached_partial(masked_prediction_step, model, optimizer)
        counter = itertools.count()
        return lambda: step(masked_batch(jax.random.fold_in(self.key, next(counter)), self.rows_tokens, self.rows_segments, **self.static))


def _table(result, setup: Setup, steps_per_call: dict[str, int] | None = None) -> dict:
    """Per step: a candidate named in `steps_per_call` runs that many steps per call."""
    steps = lambda name: (steps_per_call or {}).get(name, 1)
    step_s = lambda name: result.seconds(name) / steps(name)
    return {
        "rows": [
            {"name": name, "ms": step_s(name) * 1e3, "tokens_per_s": setup.tokens_per_step / step_s(name),
             "speedup": result.speedup(name) * steps(name) / steps(result.baseline)}
            for name in result.rounds
        ],
        "baseline": result.baseline,
    }


def transposes_in(step, model, optimizer, batch) -> int:
    """Transpose operations in the optimised XLA program of `step`."""
    text = step.lower(model, optimizer, batch).compile().as_text()
    return text.count(" transpose(")


def measure(rounds: int = 5, min_seconds: float = 0.1) -> dict:
    """Every comparison of the Performance page, as plain data."""
    with other_processes_load() as load:
        out = _measure(rounds, min_seconds)
    out["other_processes_cores"] = load["cores"]
    return out


def _measure(rounds: int, min_seconds: float) -> dict:
    started = time.perf_counter()
    setup = Setup()
    out: dict = {"tokens_per_step": setup.tokens_per_step, "batch_size": setup.batch_size,
                 "max_len": setup.config.max_len, "vocab_size": setup.config.vocab_size,
                 "prediction_slots": setup.static["max_predictions"], "cpus": os.cpu_count()}
    timed = lambda candidates: compare(candidates, rounds=rounds, min_seconds=min_seconds)

    # 0. Everything together.
    overall = timed({"as first written": setup.first_written_loop(), "the library": setup.library_loop()})
    out["overall"] = _table(overall, setup, {"the library": STEPS_PER_CALL})

    # 1. The algorithm: vocabulary scores at the hidden positions only.
    inputs, targets, weights = mask_tokens(setup.key, setup.rows_tokens, setup.config.vocab_size, setup.recipe.mask_rate)
    everywhere_model, everywhere_optimizer = setup.fresh()
    out["positions"] = _table(timed({
        "every position": lambda: every_position_step(everywhere_model, everywhere_optimizer, inputs, setup.rows_segments, targets, weights),
        "hidden positions only": setup.step_on(masked_prediction_step),
    }), setup)

    # 2. Matrix products on a flat token axis, and 3. accuracy without argmax.
    model_3d, optimizer_3d = setup.fresh()
    with products_on_3d_arrays():
        transposes_3d = transposes_in(step_with_3d_products, model_3d, optimizer_3d, setup.batch)
        step_with_3d_products(model_3d, optimizer_3d, setup.batch)  # traced (and compiled) the old way
    out["transposes"] = {"3-D": transposes_3d, "2-D": transposes_in(masked_prediction_step, *setup.fresh(), setup.batch)}
    out["products"] = _table(timed({
        "3-D products": lambda: step_with_3d_products(model_3d, optimizer_3d, setup.batch),
        "2-D products (per_token)": setup.step_on(masked_prediction_step),
    }), setup)
    out["accuracy"] = _table(timed({
        "argmax": setup.step_on(argmax_accuracy_step),
        "max and gather": setup.step_on(masked_prediction_step),
    }), setup)

    # 4. One program per step: masking fused in, state donated.
    many = f"{STEPS_PER_CALL} fused steps per call (the library)"
    out["fusion"] = _table(timed({
        "mask, then nnx.jit step": setup.unfused_loop(),
        "fused, not donated": setup.fused_loop(fused_step_without_donation),
        "fused and donated": setup.fused_loop(),
        many: setup.library_loop(),
    }), setup, {many: STEPS_PER_CALL})
    graphdef, state = nnx.split(setup.fresh())
    first_leaf = jax.tree.leaves(state)[0]
    fused_masked_prediction_step(state, setup.key, 0, setup.rows_tokens, setup.rows_segments, graphdef=graphdef, **setup.static)
    out["donated_input_deleted"] = bool(first_leaf.is_deleted())

    # 5. Embedding gradients: a gather's gradient is a scatter-add; a one-hot product's is a matmul.
    out["embedding"] = _embedding_gradients(setup, timed)

    # 6. Batch shapes.
    shapes = {b: setup.with_batch_size(b) for b in (32, 64, 128)}
    result = timed({f"batch {b}": shape.fused_loop() for b, shape in shapes.items()})
    out["batch_sizes"] = [
        {"batch_size": b, "ms": result.seconds(f"batch {b}") * 1e3, "tokens_per_s": shape.tokens_per_step / result.seconds(f"batch {b}")}
        for b, shape in shapes.items()
    ]

    # 8. The supervised loop: several steps per compiled call (before 7, whose fresh processes run last).
    out["supervised_loop"] = _supervised_loop(timed)

    # 7. XLA flags, and the time to a first finished step, in fresh processes.
    out["fresh_process"] = _fresh_process_runs()
    out["seconds"] = time.perf_counter() - started
    return out


# --8<-- [start:embedding_gradients]
def _embedding_gradients(setup: Setup, timed) -> dict:
    table = setup.fresh()[0].encoder.token_embed.embedding[...]  # (V, D)
    ids = jnp.asarray(setup.rows_tokens)  # (B, T)
    cotangent = jax.random.normal(jax.random.key(1), (*ids.shape, table.shape[1]))  # (B, T, D)
    gather = jax.jit(jax.grad(lambda t: (jnp.take(t, ids, axis=0) * cotangent).sum()))
    one_hot = jax.jit(jax.grad(lambda t: ((jax.nn.one_hot(ids, t.shape[0]) @ t) * cotangent).sum()))
    assert np.allclose(gather(table), one_hot(table), atol=1e-4)  # the same gradient
    result = timed({"gather (scatter-add gradient)": lambda: gather(table), "one-hot matmul": lambda: one_hot(table)})
    return {"rows": [{"name": n, "us": result.seconds(n) * 1e6, "speedup": result.speedup(n)} for n in result.rounds],
            "baseline": result.baseline}
# --8<-- [end:embedding_gradients]


def _supervised_loop(timed) -> dict:
    """A fine-tuning run of the label-efficiency experiment's shape (the foundation's
    encoder and a new head, batches of 16 messages of 24 tokens, 80 steps), with
    one call of `supervised_step` per batch against `train_classifier`."""
    from learnjax import messages
    from learnjax.cache import foundation_model
    from learnjax.finetuning import FinetuneSettings, build_classifier

    foundation, settings = foundation_model(), FinetuneSettings()
    pool = messages.labeled_splits()["pool"][:64]
    tokens = foundation.tokenizer.encode_batch([m.text for m in pool], messages.MESSAGE_MAX_LEN)
    labels = np.array([m.label for m in pool], np.int32)

    def fresh():
        model, trainable = build_classifier(foundation, "full")
        return model, nnx.Optimizer(model, adamw(settings.learning_rate, settings.steps, settings.warmup_steps, settings.weight_decay), wrt=trainable)

    def one_call_per_step(model, optimizer):
        step = nnx.cached_partial(supervised_step, model, optimizer)
        return lambda: [step(tokens[i], labels[i]) for i in batch_indices(len(tokens), settings.batch_size, settings.steps, 0)][-1][0]

    def library_loop(model, optimizer):
        return lambda: train_classifier(model, optimizer, tokens, labels, steps=settings.steps, batch_size=settings.batch_size).loss[-1]

    result = timed({"one call per step": one_call_per_step(*fresh()), f"{STEPS_PER_CALL} steps per call (the library)": library_loop(*fresh())})
    return {
        "rows": [{"name": n, "ms": result.seconds(n) / settings.steps * 1e3, "examples_per_s": settings.batch_size * settings.steps / result.seconds(n),
                  "speedup": result.speedup(n)} for n in result.rounds],
        "baseline": result.baseline, "steps": settings.steps, "batch_size": settings.batch_size, "max_len": messages.MESSAGE_MAX_LEN,
    }


def _fresh_process_runs(rounds: int = 1) -> list[dict]:
    """`probe()` in a new process per run of `FRESH_PROCESS_RUNS`, the runs alternating over `rounds`."""
    runs: dict[str, list[dict]] = {name: [] for name in FRESH_PROCESS_RUNS}
    for _ in range(rounds):
        for name, (flags, startup) in FRESH_PROCESS_RUNS.items():
            env = {**os.environ, "XLA_FLAGS": flags, "LEARNJAX_PROBE_STARTUP": startup, "LEARNJAX_PROBE_STARTED": repr(time.time())}
            done = subprocess.run([sys.executable, "-m", "learnjax.performance"], env=env, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = lambda rs, field: float(np.median([r[field] for r in rs]))
    base = median(runs["none (default)"], "tokens_per_s")
    return [
        {"flags": name, "startup": FRESH_PROCESS_RUNS[name][1], "first_step_s": median(rs, "first_step_s"),
         "tokens_per_s": median(rs, "tokens_per_s"), "speedup": median(rs, "tokens_per_s") / base}
        for name, rs in runs.items()
    ]


# Start-up as first written: parameters, then the step, each compiled in turn at
# XLA's default optimisation level.
_initial_state_default_level = jax.jit(initial_state.__wrapped__, static_argnums=(0, 1))
_fused_step_default_level = jax.jit(
    fused_masked_prediction_step.__wrapped__, static_argnames=("graphdef", "vocab_size", "rate", "max_predictions"), donate_argnames="state"
)


def probe(seconds: float = 0.75, startup: str = "library") -> dict:
    """Seconds from the start of this process (as the parent saw it) to a first
    finished training step, then the step's steady tokens per second.

    `startup="library"` starts as `pretrain` does: both programs compile on a
    background thread while the rest goes on. `"sequential"` builds the model,
    then compiles the step, at XLA's default optimisation level.
    """
    setup = Setup()
    tx, key = setup.optimizer(), jax.random.key(0)
    shapes = model_shapes(setup.config, tx)
    if startup == "library":
        compile_for_pretraining(setup.config, tx, key, shapes, batch_size=setup.batch_size, mask_rate=setup.recipe.mask_rate).result()
        nodes = create_model_and_optimizer(setup.config, tx, key, shapes)
        train_masked_prediction(*nodes, setup.tokens, setup.segments, steps=1, batch_size=setup.batch_size, mask_rate=setup.recipe.mask_rate)
        loop, steps_per_call = setup.library_loop(nodes), STEPS_PER_CALL
    elif startup == "sequential":
        nodes = nnx.merge(nnx.graphdef(shapes), _initial_state_default_level(setup.config, tx, key))
        loop, steps_per_call = setup.fused_loop(_fused_step_default_level, nodes), 1
        jax.block_until_ready(loop())
    else:
        raise ValueError(f"startup must be 'library' or 'sequential', got {startup!r}")
    first_step_s = time.time() - float(os.environ.get("LEARNJAX_PROBE_STARTED", _IMPORTED))
    from learnjax.timing import seconds_per_call

    return {"first_step_s": first_step_s, "tokens_per_s": setup.tokens_per_step * steps_per_call / seconds_per_call(loop, seconds)}


_IMPORTED = time.time()

if __name__ == "__main__":
    print(json.dumps(probe(startup=os.environ.get("LEARNJAX_PROBE_STARTUP", "library"))))
