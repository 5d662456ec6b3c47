"""The Performance page's measurement: what makes the library's masked-prediction
step (and its supervised loop) fast, each choice measured against the way it was
first written, on the docs' model.

`measured()` is what the page calls: `measure()` once per version of the code
(this module's, `benchmarks.timing`'s and the library's), then read from
learnjax's cache. `measure()` runs the comparisons in a fresh Python process
(`python -m benchmarks.performance`): the start-up is then timed as a new user
meets it, with nothing compiled yet, and nothing a site build ran before (it
runs every page in one process) is in the way.

The candidates of a comparison are timed in alternating rounds
(`benchmarks.timing`), so background load slows them alike. In that process
every program compiles at the optimisation level of the library's step
(`XLA_FLAGS`), so that two candidates differ only in what they vary. Each
variant is a program of its own and costs a compilation, so the page measures
the fewest programs that show each choice, a few rounds each; `variants.py`
measures them at length, in fresh processes, at two model sizes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import inspect
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import learnjax.model
import learnjax.steps
from benchmarks import timing
from learnjax.masking import mask_tokens, masked_batch
from learnjax.model import MaskedLanguageModel
from learnjax.pretraining import compile_for_pretraining, create_model_and_optimizer, model_shapes
from learnjax.steps import masked_prediction_step, masked_prediction_update
from learnjax.training import (
    STEP_COMPILER_OPTIONS, STEPS_PER_CALL, adamw, batch_indices, masked_prediction_steps, masking_args, supervised_steps,
    train_masked_prediction,
)

ROOT = Path(__file__).resolve().parents[1]
# Timed rounds per comparison, and the least time of one candidate's round (a
# step of the docs' model takes longer: its round is one call). The loops'
# comparison has fewer: its library candidate runs twenty steps per call.
ROUNDS, LOOP_ROUNDS, MIN_SECONDS = 5, 3, 0.02
STARTED = "LEARNJAX_MEASURE_STARTED"  # when the parent spawned the measuring process (time.time())


# --8<-- [start:first_written_step]
def every_position_update(model, optimizer, inputs, segments, targets, weights):
    """Scores the whole vocabulary at all T positions; only the hidden ones count."""

    def loss_fn(model):
        logits = model(inputs, segments)  # (B, T, V): every position
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # (B, T)
        return (losses * weights).sum() / jnp.maximum(weights.sum(), 1.0)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


first_written_step = nnx.jit(every_position_update)
"""The step as first written: every position, and (traced inside
`products_on_3d_arrays()`) the products on 3-D arrays."""
# --8<-- [end:first_written_step]


# --8<-- [start:products_on_3d_arrays]
@contextlib.contextmanager
def swapped(module, name: str, value):
    """While active, `module.name` is `value`: a step traced meanwhile compiles with it."""
    kept = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, kept)


def products_on_3d_arrays():
    """Each Linear applied to (B, T, D) arrays directly, as the model was first
    written, instead of through `per_token`."""
    return swapped(learnjax.model, "per_token", lambda layer, x: layer(x))


step_with_3d_products = nnx.jit(masked_prediction_update)
"""The library's step, its own compiled copy: traced inside `products_on_3d_arrays()`."""
# --8<-- [end:products_on_3d_arrays]


# --8<-- [start:argmax_accuracy]
def argmax_masked_prediction_loss(model, batch):
    """`masked_prediction_loss` as first written: the accuracy from an argmax over the vocabulary."""
    logits = model(batch["inputs"], batch["segments"], batch["positions"])  # (B, P, V)
    targets, weights = batch["targets"], batch["weights"]
    n_scored = jnp.maximum(weights.sum(), 1.0)
    loss = (optax.softmax_cross_entropy_with_integer_labels(logits, targets) * weights).sum() / n_scored
    return loss, ((logits.argmax(-1) == targets) * weights).sum() / n_scored


def accuracy_from_argmax():
    """The step's accuracy taken from an argmax, as first written."""
    return swapped(learnjax.steps, "masked_prediction_loss", argmax_masked_prediction_loss)

# --8<-- [end:argmax_accuracy]


class Setup:
    """The docs' model size and one batch of packed rows of the built-in corpus."""

    def __init__(self, batch_size: int | None = None, n_layers: int | None = None, n_texts: int = 1_000):
        from learnjax import corpus
        from learnjax.cache import foundation_model

        foundation = foundation_model()  # for its recipe and its vocabulary
        self.recipe, self.config = foundation.recipe, foundation.model.config
        if n_layers:  # a shallower model compiles faster (for tests)
            self.config = dataclasses.replace(self.config, n_layers=n_layers)
        self.tokens, self.segments = foundation.tokenizer.encode_packed(corpus.build_corpus(n_texts), self.config.max_len)
        self.batch_size = batch_size or self.recipe.batch_size
        self.key = jax.random.key(0)
        self.static = masking_args(self.config.vocab_size, self.config.max_len, self.recipe.mask_rate)

    @property
    def rows_tokens(self) -> np.ndarray:
        return self.tokens[: self.batch_size]

    @property
    def rows_segments(self) -> np.ndarray:
        return self.segments[: self.batch_size]

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.config.max_len

    @functools.cached_property
    def batch(self) -> dict:
        """One masked batch of the rows, as `masked_batch` makes it."""
        return masked_batch(self.key, self.rows_tokens, self.rows_segments, **self.static)

    def with_batch_size(self, batch_size: int) -> Setup:
        """The same model and data, with batches of `batch_size` rows."""
        other = copy.copy(self)
        other.__dict__.pop("batch", None)
        other.batch_size = batch_size
        return other

    def optimizer(self):
        return adamw(self.recipe.learning_rate, self.recipe.steps, self.recipe.warmup_steps, 0.01)

    def fresh(self):
        """A new model and its optimizer, as pre-training builds them."""
        return create_model_and_optimizer(self.config, self.optimizer(), jax.random.key(0))

    def step_on(self, step, nodes=None):
        """A zero-argument call of `step(model, optimizer, batch)`, on a fresh model unless `nodes` are given."""
        model, optimizer = nodes or self.fresh()
        return lambda: step(model, optimizer, self.batch)

    def library_loop(self, nodes=None, steps: int = STEPS_PER_CALL):
        """A zero-argument call of the library's loop, the program `train_masked_prediction`
        runs (`masked_prediction_steps`): `steps` fused steps in one call; time it per step."""
        graphdef, state = nnx.split(nodes or self.fresh())
        stacked = lambda rows: jnp.asarray(np.repeat(rows[None], STEPS_PER_CALL, axis=0))  # (STEPS_PER_CALL, B, T), on the device once
        tokens, segments = stacked(self.rows_tokens), stacked(self.rows_segments)
        counter = itertools.count(0, steps)

        def call():
            nonlocal state
            state, (losses, _) = masked_prediction_steps(state, self.key, next(counter), tokens, segments, steps, graphdef=graphdef, **self.static)
            return losses

        return call

    def masked_rows(self, step: int = 0) -> tuple:
        """The rows masked on every position (`mask_tokens`), as `every_position_update`
        takes them after the model: inputs, segments, targets, weights."""
        inputs, targets, weights = mask_tokens(jax.random.fold_in(self.key, step), self.rows_tokens, self.static["vocab_size"], self.static["rate"])
        return inputs, self.rows_segments, targets, weights

    def first_written_step(self, nodes):
        """`first_written_step` compiled for `nodes` (model, optimizer): every position, 3-D products."""
        return compiled_as(products_on_3d_arrays(), first_written_step, *nodes, *self.masked_rows())

    def first_written_loop(self, nodes=None, step=None):
        """One step as first written: mask on every position, then the step that scores them all."""
        nodes = nodes or self.fresh()
        step = step or self.first_written_step(nodes)
        counter = itertools.count()
        return lambda: step(*nodes, *self.masked_rows(next(counter)))

    def unfused_loop(self):
        """One step of the loop as first written: mask, then call the nnx.jit step."""
        model, optimizer = self.fresh()
        step = nnx.cached_partial(masked_prediction_step, model, optimizer)
        counter = itertools.count()
        return lambda: step(masked_batch(jax.random.fold_in(self.key, next(counter)), self.rows_tokens, self.rows_segments, **self.static))


def compiled_as(switch, step, *args):
    """`step` for `args`, traced and compiled inside `switch`. The program is
    called directly, so it can never be traced again outside the switch."""
    with switch:
        return step.lower(*args).compile()


def library_start(setup: Setup):
    """Start-up as `pretrain` does it: the initial values (one program, compiled at
    XLA's level 0) and the training loop traced, then compiled on a background
    thread; then the model is built and one step runs."""
    tx, key = setup.optimizer(), jax.random.key(0)
    shapes = model_shapes(setup.config, tx)
    compile_for_pretraining(setup.config, tx, key, shapes, batch_size=setup.batch_size, mask_rate=setup.recipe.mask_rate).result()
    nodes = create_model_and_optimizer(setup.config, tx, key, shapes)
    train_masked_prediction(*nodes, setup.tokens, setup.segments, steps=1, batch_size=setup.batch_size, mask_rate=setup.recipe.mask_rate)


def first_written_start(setup: Setup):
    """Start-up as first written: the model and optimizer built eagerly (each
    initializer of each shape compiles a small program of its own), then the
    step as first written compiled and run. Returns the model and the step."""
    model = MaskedLanguageModel(setup.config, rngs=nnx.Rngs(0))
    nodes = (model, nnx.Optimizer(model, setup.optimizer(), wrt=nnx.Param))
    step = setup.first_written_step(nodes)
    jax.block_until_ready(step(*nodes, *setup.masked_rows()))
    return nodes, step


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _table(result: timing.Comparison, names: dict[str, str], tokens_per_step: int, steps_per_call: dict[str, int] | None = None) -> dict:
    """The candidates `names` of `result` (shown under their values), per step, with
    their speed-up over the first. A candidate in `steps_per_call` runs that many steps per call."""
    steps = lambda name: (steps_per_call or {}).get(name, 1)
    step_s = lambda name: result.seconds(name) / steps(name)
    baseline = next(iter(names))
    return {
        "rows": [
            {"name": shown, "ms": step_s(name) * 1e3, "tokens_per_s": tokens_per_step / step_s(name),
             "speedup": result.speedup(name, over=baseline) * steps(name) / steps(baseline)}
            for name, shown in names.items()
        ],
        "baseline": names[baseline],
    }


def _measure_here() -> dict:
    """Every comparison of the page, in this (fresh) process."""
    started_process = float(os.environ.get(STARTED, time.time()))
    timed = lambda candidates, rounds=ROUNDS: timing.compare(candidates, rounds=rounds, min_seconds=MIN_SECONDS)
    setup = Setup()
    out: dict = {"tokens_per_step": setup.tokens_per_step, "batch_size": setup.batch_size,
                 "max_len": setup.config.max_len, "vocab_size": setup.config.vocab_size,
                 "prediction_slots": setup.static["max_predictions"], "cpus": os.cpu_count()}

    # 7. Start-up, first, while nothing of the step is compiled: the library's, then as first written.
    data_s = time.time() - started_process
    library_s = _seconds(lambda: library_start(setup))
    started = time.perf_counter()
    first_written, first_written_program = first_written_start(setup)
    out["startup"] = {"imports_and_data_s": data_s, "library_s": library_s, "first_step_s": data_s + library_s,
                      "first_written_s": time.perf_counter() - started}

    # 0, 4 and 6. Loops of steps, from as first written to the library's, and a larger batch.
    # The library's program throughout (`masked_prediction_steps`), called for 1 or 20 steps.
    one, many = "fused, one step per call", f"{STEPS_PER_CALL} fused steps per call (the library)"
    larger = setup.with_batch_size(2 * setup.batch_size)
    nodes = setup.fresh()
    first_leaf = jax.tree.leaves(nnx.state(nodes))[0]
    loops = timed({
        "as first written": setup.first_written_loop(first_written, first_written_program),
        "mask, then nnx.jit step": setup.unfused_loop(),
        one: setup.library_loop(nodes, steps=1),
        many: setup.library_loop(),
        "larger batch": larger.library_loop(steps=1),
    }, rounds=LOOP_ROUNDS)
    out["donated_input_deleted"] = bool(first_leaf.is_deleted())  # the state `nodes` held went into the first call
    out["overall"] = _table(loops, {"as first written": "as first written", many: "the library"}, setup.tokens_per_step, {many: STEPS_PER_CALL})
    out["fusion"] = _table(loops, {"mask, then nnx.jit step": "mask, then nnx.jit step", one: one, many: many},
                           setup.tokens_per_step, {many: STEPS_PER_CALL})
    out["batch_sizes"] = [{"batch_size": s.batch_size, "ms": loops.seconds(name) * 1e3, "tokens_per_s": s.tokens_per_step / loops.seconds(name)}
                          for name, s in ((one, setup), ("larger batch", larger))]

    # 1 and 2. The step with hidden positions only, then with 2-D products, on one masked batch
    # (the first: the first-written step, on one batch masked on every position).
    masked = setup.masked_rows()
    model_3d = setup.fresh()
    step_3d = compiled_as(products_on_3d_arrays(), step_with_3d_products, *model_3d, setup.batch)
    steps = timed({
        "every position, 3-D products": lambda: first_written_program(*first_written, *masked),
        "hidden positions only, 3-D products": lambda: step_3d(*model_3d, setup.batch),
        "hidden positions only, 2-D products (the library)": setup.step_on(masked_prediction_step),
    })
    out["positions"] = _table(steps, {"every position, 3-D products": "every position",
                                      "hidden positions only, 3-D products": "hidden positions only"}, setup.tokens_per_step)
    out["products"] = _table(steps, {"hidden positions only, 3-D products": "3-D products",
                                     "hidden positions only, 2-D products (the library)": "2-D products (per_token)"}, setup.tokens_per_step)
    library_text = masked_prediction_step.lower(*setup.fresh(), setup.batch).compile().as_text()  # from jit's cache
    out["transposes"] = {"3-D": step_3d.as_text().count(" transpose("), "2-D": library_text.count(" transpose(")}
    out["step_ms"] = steps.seconds("hidden positions only, 2-D products (the library)") * 1e3

    # 3. The accuracy: the loss and accuracy of the same scores, either way.
    out["accuracy"] = _accuracies(setup, timed)

    # 5. Embedding gradients: a gather's gradient is a scatter-add; a one-hot product's is a matmul.
    out["embedding"] = _embedding_gradients(setup, timed)

    # 8. The supervised loop: one program, called per step or per twenty steps.
    out["supervised_loop"] = _supervised_loop(timed)
    return out


def _accuracies(setup: Setup, timed) -> dict:
    """`masked_prediction_loss` against `argmax_masked_prediction_loss`, on the same
    scores (B, P, V): the programs differ in the accuracy alone."""
    batch = setup.batch
    # Scores of the model's shape (B, P, V); their values do not change what either accuracy costs.
    logits = jax.random.normal(setup.key, (*batch["targets"].shape, setup.config.vocab_size))
    # A "model" that returns the scores; they are an argument, not a constant XLA would fold in.
    on_scores = lambda loss: jax.jit(lambda logits, batch: loss(lambda *_: logits, batch))
    library, argmax = on_scores(learnjax.steps.masked_prediction_loss), on_scores(argmax_masked_prediction_loss)
    result = timed({"argmax": lambda: argmax(logits, batch), "max and gather": lambda: library(logits, batch)})
    return {"rows": [{"name": n, "us": result.seconds(n) * 1e6, "speedup": result.speedup(n)} for n in result.rounds],
            "baseline": result.baseline}


# --8<-- [start:embedding_gradients]
def _embedding_gradients(setup: Setup, timed) -> dict:
    table = setup.fresh()[0].encoder.token_embed.embedding[...]  # (V, D)
    ids = jnp.asarray(setup.rows_tokens)  # (B, T)
    cotangent = jax.random.normal(jax.random.key(1), (*ids.shape, table.shape[1]))  # (B, T, D)
    gather = jax.jit(jax.grad(lambda t, ids, cotangent: (jnp.take(t, ids, axis=0) * cotangent).sum()))
    one_hot = jax.jit(jax.grad(lambda t, ids, cotangent: ((jax.nn.one_hot(ids, t.shape[0]) @ t) * cotangent).sum()))
    assert np.allclose(gather(table, ids, cotangent), one_hot(table, ids, cotangent), atol=1e-4)  # the same gradient
    result = timed({"gather (scatter-add gradient)": lambda: gather(table, ids, cotangent),
                    "one-hot matmul": lambda: one_hot(table, ids, cotangent)})
    return {"rows": [{"name": n, "us": result.seconds(n) * 1e6, "speedup": result.speedup(n)} for n in result.rounds],
            "baseline": result.baseline}
# --8<-- [end:embedding_gradients]


def _supervised_loop(timed) -> dict:
    """Fine-tuning steps of the label-efficiency experiment's shape (the foundation's
    encoder and a new head, batches of 16 messages of 24 tokens) by the program
    `train_classifier` runs (`supervised_steps`), called once per step or once
    for `STEPS_PER_CALL` steps."""
    from learnjax import messages
    from learnjax.cache import foundation_model
    from learnjax.finetuning import FinetuneSettings, build_classifier

    foundation, settings = foundation_model(), FinetuneSettings()
    pool = messages.labeled_splits()["pool"][:64]
    tokens = foundation.tokenizer.encode_batch([m.text for m in pool], messages.MESSAGE_MAX_LEN)
    labels = np.array([m.label for m in pool], np.int32)
    order = np.stack(list(batch_indices(len(tokens), settings.batch_size, STEPS_PER_CALL, 0)))  # (STEPS_PER_CALL, B)

    def loop(steps_per_call: int):
        model, trainable = build_classifier(foundation, "full")
        tx = adamw(settings.learning_rate, settings.steps, settings.warmup_steps, settings.weight_decay)
        graphdef, state = nnx.split((model, nnx.Optimizer(model, tx, wrt=trainable)))
        # Stack k starts at batch k, so that call after call trains on batch after batch.
        stacks = [(jnp.asarray(tokens[np.roll(order, -k, axis=0)]), jnp.asarray(labels[np.roll(order, -k, axis=0)]))
                  for k in range(0, STEPS_PER_CALL, steps_per_call)]  # on the device once

        def call():  # STEPS_PER_CALL steps
            nonlocal state
            for stack_tokens, stack_labels in stacks:
                state, (losses, _) = supervised_steps(state, stack_tokens, stack_labels, steps_per_call, graphdef=graphdef)
            return losses

        return call

    per_step, library = "one step per call", f"{STEPS_PER_CALL} steps per call (the library)"
    result = timed({per_step: loop(1), library: loop(STEPS_PER_CALL)})
    return {
        "rows": [{"name": n, "ms": result.seconds(n) / STEPS_PER_CALL * 1e3,
                  "examples_per_s": settings.batch_size * STEPS_PER_CALL / result.seconds(n), "speedup": result.speedup(n)}
                 for n in result.rounds],
        "baseline": result.baseline, "steps": STEPS_PER_CALL, "batch_size": settings.batch_size, "max_len": messages.MESSAGE_MAX_LEN,
    }


def measure() -> dict:
    """Every comparison of the Performance page, as plain data, measured in a
    fresh process (see the module's docstring) while this one waits."""
    from learnjax.cache import foundation_model

    # On disk before the measuring process loads it: it must not pre-train it,
    # since the cache computes one entry at a time and this process is computing one.
    foundation_model()
    env = {**os.environ, STARTED: repr(time.time()), "JAX_ENABLE_COMPILATION_CACHE": "false",
           "XLA_FLAGS": f"--xla_backend_optimization_level={STEP_COMPILER_OPTIONS['xla_backend_optimization_level']}"}
    started = time.perf_counter()
    with timing.other_processes_load() as load:
        done = subprocess.run([sys.executable, "-m", "benchmarks.performance"], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the Performance page's measurement failed (exit status {done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {**out, "other_processes_cores": load["cores"], "seconds": time.perf_counter() - started}


def measured() -> dict:
    """The Performance page's figures: `measure()`, taken once per version of the
    code on this machine and kept in learnjax's cache."""
    from learnjax.cache import cached_json

    sources = tuple(inspect.getsource(module) for module in (sys.modules[__name__], timing))
    return cached_json("performance", {}, measure, modules=("finetuning",), extra_sources=sources)


if __name__ == "__main__":
    print(json.dumps(_measure_here()))
