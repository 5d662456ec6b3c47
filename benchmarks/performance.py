"""The Performance page's measurement: what makes the library's masked-prediction
step fast, each choice measured against the way it was first written, on the
docs' model.

`measured()` is what the page calls: `measure()` once per version of the code
(this module's, `benchmarks.timing`'s and the library's), then read from
learnjax's cache.

The candidates of a comparison are timed in alternating rounds
(`benchmarks.timing`), so background load slows them alike, and every variant
of the step compiles with the library step's options, so that two candidates
differ only in what they vary. Each variant is a program of its own and costs
a compilation, so the page measures the fewest programs that show each choice,
a few rounds each, and reuses what the process has compiled already (a site
build that pre-trained the foundation model has the library's loop); the
benchmarks here measure the choices at length, in fresh processes, at two
model sizes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import learnjax.models.transformer
import learnjax.training.steps
from benchmarks import timing
from learnjax.training.loops import (
    STEP_COMPILER_OPTIONS,
    STEPS_PER_CALL,
    adamw,
    masked_prediction_steps,
    masking_args,
)
from learnjax.training.masking import mask_tokens, masked_batch
from learnjax.training.pretraining import create_model_and_optimizer
from learnjax.training.steps import masked_prediction_step, masked_prediction_update

# Timed rounds per comparison, and the least time of one candidate's round (a
# step of the docs' model takes longer: its round is one call). The loops'
# comparison has fewer: its library candidate runs twenty steps per call.
ROUNDS, LOOP_ROUNDS, MIN_SECONDS = 5, 3, 0.02


# --8<-- [start:first_written_step]
def every_position_update(model, optimizer, inputs, segments, targets, weights):
    """Scores the whole vocabulary at all T positions; only the hidden ones count."""

    def loss_fn(model):
        logits = model(inputs, segments)  # (B, T, V): every position
        losses = optax.softmax_cross_entropy_with_integer_labels(  # (B, T)
            logits, targets)
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
    """While active, `module.name` is `value`: a step traced then compiles with it."""
    kept = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, kept)


def products_on_3d_arrays():
    """Each Linear applied to (B, T, D) arrays directly, as the model was first
    written, instead of through `per_token`."""
    return swapped(learnjax.models.transformer, "per_token", lambda layer, x: layer(x))


step_with_3d_products = nnx.jit(masked_prediction_update)
"""The library's step, its own compiled copy: traced in `products_on_3d_arrays()`."""
# --8<-- [end:products_on_3d_arrays]


# --8<-- [start:argmax_accuracy]
def argmax_masked_prediction_loss(model, batch):
    """`masked_prediction_loss` as first written: the accuracy from an argmax over the
    vocabulary, which XLA on CPU runs as a reduction carrying both value and index."""
    logits = model(batch["inputs"], batch["segments"], batch["positions"])  # (B, P, V)
    targets, weights = batch["targets"], batch["weights"]
    n_scored = jnp.maximum(weights.sum(), 1.0)
    loss = (optax.softmax_cross_entropy_with_integer_labels(logits, targets)
            * weights).sum() / n_scored
    return loss, ((logits.argmax(-1) == targets) * weights).sum() / n_scored


def accuracy_from_argmax():
    """The step's accuracy taken from an argmax, as first written."""
    return swapped(learnjax.training.steps, "masked_prediction_loss",
                   argmax_masked_prediction_loss)

# --8<-- [end:argmax_accuracy]


class Setup:
    """The docs' model size and one batch of packed rows of the built-in corpus."""

    def __init__(self, batch_size: int | None = None, n_layers: int | None = None, n_texts: int = 1_000):
        from learnjax.data import corpus
        from learnjax.training.pretraining import foundation_model

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

    def optimizer(self):
        return adamw(self.recipe.steps, self.recipe.warmup_steps, 0.01)

    def fresh(self):
        """A new model and its optimizer, as pre-training builds them."""
        return create_model_and_optimizer(self.config, self.optimizer(), jax.random.key(0), self.recipe.learning_rate)

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

    def first_written_loop(self, nodes, step):
        """One step as first written: mask on every position, then the step that scores
        them all (`step`: `first_written_step` compiled for `nodes`, model and optimizer)."""
        counter = itertools.count()
        return lambda: step(*nodes, *self.masked_rows(next(counter)))

    def unfused_loop(self, step=masked_prediction_step):
        """One step of the loop as first written: mask, then call the nnx.jit step."""
        model, optimizer = self.fresh()
        counter = itertools.count()
        return lambda: step(model, optimizer, masked_batch(jax.random.fold_in(self.key, next(counter)), self.rows_tokens, self.rows_segments, **self.static))


# XLA compiles without holding Python's lock: one program compiles on this
# thread while the next is traced on the calling one.
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="performance-compile")


def compile_ahead(step, *args, switch=contextlib.nullcontext(), **kwargs) -> Future:
    """`step` for `args`, traced here (inside `switch`) and compiled with the library
    step's options on a background thread while this one goes on. The future's
    program is called directly, so it is never traced again outside the switch."""
    with switch:
        lowered = step.lower(*args, **kwargs)
    return _COMPILER.submit(lowered.compile, STEP_COMPILER_OPTIONS)


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


def measure() -> dict:
    """Every comparison of the Performance page, as plain data."""
    with timing.other_processes_load() as load:
        out = _measure()
    return {**out, "other_processes_cores": load["cores"]}


def _measure() -> dict:
    timed = lambda candidates, rounds=ROUNDS: timing.compare(candidates, rounds=rounds, min_seconds=MIN_SECONDS)
    setup = Setup()
    out: dict = {"tokens_per_step": setup.tokens_per_step, "batch_size": setup.batch_size,
                 "max_len": setup.config.max_len, "vocab_size": setup.config.vocab_size,
                 "prediction_slots": setup.static["max_predictions"], "cpus": os.cpu_count()}

    # The steps' inputs (small programs of their own), then the variants of the
    # step, each traced while the one before compiles.
    first_written, model_3d, library_nodes, masked, batch = setup.fresh(), setup.fresh(), setup.fresh(), setup.masked_rows(), setup.batch
    programs = {
        "first written": compile_ahead(first_written_step, *first_written, *masked, switch=products_on_3d_arrays()),
        "3-D": compile_ahead(step_with_3d_products, *model_3d, batch, switch=products_on_3d_arrays()),
        "library step": compile_ahead(masked_prediction_step, *library_nodes, batch),
    }
    programs = {name: future.result() for name, future in programs.items()}

    # 0 and 4. Loops of steps, from as first written to the library's.
    many = f"{STEPS_PER_CALL} fused steps per call (the library)"
    nodes = setup.fresh()
    first_leaf = jax.tree.leaves(nnx.state(nodes))[0]
    loops = timed({
        "as first written": setup.first_written_loop(first_written, programs["first written"]),
        "mask, then nnx.jit step": setup.unfused_loop(programs["library step"]),
        many: setup.library_loop(nodes),
    }, rounds=LOOP_ROUNDS)
    out["donated_input_deleted"] = bool(first_leaf.is_deleted())  # the state `nodes` held went into the first call
    out["overall"] = _table(loops, {"as first written": "as first written", many: "the library"}, setup.tokens_per_step, {many: STEPS_PER_CALL})
    out["fusion"] = _table(loops, {"mask, then nnx.jit step": "mask, then nnx.jit step", many: many}, setup.tokens_per_step, {many: STEPS_PER_CALL})

    # 1 and 2. The step with hidden positions only, then with 2-D products, on one masked batch
    # (the first: the first-written step, on one batch masked on every position).
    steps = timed({
        "every position, 3-D products": lambda: programs["first written"](*first_written, *masked),
        "hidden positions only, 3-D products": lambda: programs["3-D"](*model_3d, batch),
        "hidden positions only, 2-D products (the library)": lambda: programs["library step"](*library_nodes, batch),
    })
    out["positions"] = _table(steps, {"every position, 3-D products": "every position",
                                      "hidden positions only, 3-D products": "hidden positions only"}, setup.tokens_per_step)
    out["products"] = _table(steps, {"hidden positions only, 3-D products": "3-D products",
                                     "hidden positions only, 2-D products (the library)": "2-D products (per_token)"}, setup.tokens_per_step)
    out["transposes"] = {name: programs[program].as_text().count(" transpose(") for name, program in (("3-D", "3-D"), ("2-D", "library step"))}
    out["step_ms"] = steps.seconds("hidden positions only, 2-D products (the library)") * 1e3

    # 3. The accuracy: the loss and accuracy of the same scores, either way.
    out["accuracy"] = _per_call(_accuracies(setup, timed))

    # 5. Embedding gradients: a gather's gradient is a scatter-add; a one-hot product's is a matmul.
    out["embedding"] = _per_call(embedding_gradients(setup, timed))
    return out


def _accuracies(setup: Setup, timed) -> timing.Comparison:
    """`masked_prediction_loss` against `argmax_masked_prediction_loss`, on the same
    scores (B, P, V): the programs differ in the accuracy alone."""
    batch = setup.batch
    # Scores of the model's shape (B, P, V); their values do not change what either accuracy costs.
    logits = jnp.asarray(np.random.default_rng(0).standard_normal((*batch["targets"].shape, setup.config.vocab_size), dtype=np.float32))
    # A "model" that returns the scores; they are an argument, not a constant XLA would fold in.
    on_scores = lambda loss: jax.jit(lambda logits, batch: loss(lambda *_: logits, batch))
    library, argmax = on_scores(learnjax.training.steps.masked_prediction_loss), on_scores(argmax_masked_prediction_loss)
    return timed({"argmax": lambda: argmax(logits, batch), "max and gather": lambda: library(logits, batch)})


def _per_call(result: timing.Comparison) -> dict:
    """Each candidate's microseconds per call and speed-up over the first."""
    return {"rows": [{"name": n, "us": result.seconds(n) * 1e6, "speedup": result.speedup(n)} for n in result.rounds],
            "baseline": result.baseline}


# --8<-- [start:embedding_gradients]
def embedding_gradients(setup: Setup, timed):
    """The embedding table's gradient taken through a lookup and through a one-hot
    product: the same values (checked), timed side by side by `timed`."""
    table = setup.fresh()[0].encoder.token_embed.embedding[...]  # (V, D)
    ids = jnp.asarray(setup.rows_tokens)  # (B, T)
    cotangent = jnp.asarray(np.random.default_rng(1).standard_normal(  # (B, T, D)
        (*ids.shape, table.shape[1]), dtype=np.float32))
    gather = jax.jit(jax.grad(lambda t, ids, cotangent: (
        jnp.take(t, ids, axis=0) * cotangent).sum()))
    one_hot = jax.jit(jax.grad(lambda t, ids, cotangent: (
        (jax.nn.one_hot(ids, t.shape[0]) @ t) * cotangent).sum()))
    assert np.allclose(gather(table, ids, cotangent),  # the same gradient
                       one_hot(table, ids, cotangent), atol=1e-4)
    return timed({
        "gather (scatter-add gradient)": lambda: gather(table, ids, cotangent),
        "one-hot matmul": lambda: one_hot(table, ids, cotangent),
    })
# --8<-- [end:embedding_gradients]


def measured() -> dict:
    """The Performance page's figures: `measure()`, taken once per version of the
    code on this machine and kept in learnjax's cache."""
    from learnjax.storage.cache import cached_json

    return cached_json("performance", {}, measure, extra_files=(__file__, timing.__file__))


if __name__ == "__main__":
    import json
    import time

    from learnjax.training.pretraining import foundation_model

    foundation_model()  # loaded first, as a site build has it: the time below is the measurement's own
    started = time.perf_counter()
    figures = measure()  # afresh, not read from the cache
    print(json.dumps(figures, indent=1))
    load = figures["other_processes_cores"]
    print(f"measured in {time.perf_counter() - started:.1f} s"
          + (f", while other processes kept {load:.2f} cores busy" if load is not None else ""), file=sys.stderr)
