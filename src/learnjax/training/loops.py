"""Training loops around the jit-compiled steps: batching, progress and history."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm  # plain text bars: no widget warnings in notebooks

from learnjax.storage.progress import Checkpointing, History
from learnjax.training import sharding
from learnjax.training.masking import check_mask_rate, masked_batch, max_predictions_for
from learnjax.training.steps import (
    classifier_features,
    masked_prediction_update,
    next_word_update,
    predict_logits,
    supervised_update,
)


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


def batch_indices(n_examples: int, batch_size: int, steps: int, seed: int) -> Iterator[np.ndarray]:
    """Index batches of a fixed size: shuffled epochs, drawn again once used up.

    Every batch has the same shape, so a jit-compiled step compiles once.
    With fewer examples than `batch_size`, examples repeat within a batch.
    """
    if n_examples < 1:
        raise ValueError(f"cannot draw batches from {n_examples} examples")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        while len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(n_examples)])
        yield order[:batch_size]
        order = order[batch_size:]


def check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"training stopped: the loss became {loss} at step {step}; "
            "try a learning rate ten times smaller, or more warm-up steps"
        )


def _adamw_on_warmup_cosine(learning_rate, *, steps: int, warmup_steps: int, weight_decay: float) -> optax.GradientTransformation:
    return optax.adamw(warmup_cosine(learning_rate, steps, warmup_steps), weight_decay=weight_decay)


@functools.lru_cache(maxsize=64)
def adamw(steps: int, warmup_steps: int, weight_decay: float = 0.01) -> optax.GradientTransformation:
    """AdamW on a warm-up then cosine schedule whose peak learning rate is a value
    in the optimizer's state (`optax.inject_hyperparams`), set by `new_optimizer`.

    The transform is part of a compiled step's static structure, so runs with
    the same schedule get the very same object (hence the cache), and runs at
    different learning rates share one compiled program, even trained together
    under `jax.vmap`.
    """
    factory = functools.partial(_adamw_on_warmup_cosine, steps=steps, warmup_steps=warmup_steps, weight_decay=weight_decay)
    static = ("steps", "warmup_steps", "weight_decay")  # part of the program; only the rate is a value
    return optax.inject_hyperparams(factory, static_args=static)(learning_rate=1.0)  # the real rate: `new_optimizer`


def owned_copy(module: nnx.Module) -> nnx.Module:
    """A copy of `module` with arrays of its own. `nnx.clone` copies the module
    but shares its arrays, and a loop that donates its state (its buffers are
    reused for the new state) would delete them from the original too."""
    copy = nnx.clone(module)
    nnx.update(copy, jax.tree.map(jnp.copy, nnx.state(copy)))
    return copy


def check_learning_rate(learning_rate: float) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not 0 < learning_rate < math.inf:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    return float(learning_rate)


def set_learning_rate(optimizer: nnx.Optimizer, learning_rate: float) -> None:
    """Sets the peak learning rate of an optimizer built on `adamw`."""
    optimizer.opt_state.hyperparams["learning_rate"][...] = jnp.float32(check_learning_rate(learning_rate))


def new_optimizer(model: nnx.Module, tx: optax.GradientTransformation, learning_rate: float, wrt=nnx.Param) -> nnx.Optimizer:
    """`nnx.Optimizer(model, tx, wrt=wrt)` for a `tx` from `adamw`, at `learning_rate`."""
    optimizer = nnx.Optimizer(model, tx, wrt=wrt)
    set_learning_rate(optimizer, learning_rate)
    return optimizer


def warmup_cosine(learning_rate, steps: int, warmup_steps: int) -> optax.Schedule:
    """From 0 up to `learning_rate` in `warmup_steps`, then down to a tenth of it
    along a cosine. `learning_rate` may be an array (a traced value): it scales
    a schedule whose shape is fixed by the step counts."""
    warmup_steps = max(1, min(warmup_steps, steps - 1)) if steps > 1 else 0
    if warmup_steps == 0:
        return lambda count: learning_rate * jnp.ones_like(count, jnp.float32)
    shape = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps, steps, 0.1)
    return lambda count: learning_rate * shape(count)


# XLA's optimisation level 1 instead of 2: the step compiles about 0.4 s sooner and runs as fast (its
# matrix products are library calls; the level only tunes the generated element-wise code).
# A variant of the step compiled for comparison takes the same options, so only what it varies differs.
STEP_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


# --8<-- [start:fused_masked_prediction_step]
@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "vocab_size", "rate", "max_predictions"),
    donate_argnames="state",
    compiler_options=STEP_COMPILER_OPTIONS,
)
def fused_masked_prediction_step(state, key, step, tokens, segments, *,
                                 graphdef, vocab_size, rate, max_predictions):
    """Masking plus `masked_prediction_update` as one compiled function of the
    split (model, optimizer) state.

    Three things make it faster than calling `masked_prediction_step` on a
    freshly masked batch: the masking runs inside the same XLA program (no
    separate dispatch, no batch round trip); the state is donated, so XLA
    writes the new parameters and moments into the old buffers; and state in,
    state out is a plain pytree, so no module graph is walked per call.
    """
    model, optimizer = nnx.merge(graphdef, state)
    batch = masked_batch(jax.random.fold_in(key, step), tokens, segments,
                         vocab_size, rate, max_predictions)
    loss, accuracy = masked_prediction_update(model, optimizer, batch)
    return nnx.state((model, optimizer)), loss, accuracy
# --8<-- [end:fused_masked_prediction_step]


# Steps per compiled call of the training loops: a run's steps go to XLA in a
# few calls instead of one call each, and the progress bar still moves. Inside
# one call XLA also keeps the step's working memory from one step to the next,
# where a call per step asks the system for fresh memory every step.
STEPS_PER_CALL = 20


# --8<-- [start:steps_in_one_loop]
def steps_in_one_loop(step, state, count, stack_size):
    """`state, loss, accuracy = step(i, state)` for i < `count`, as one
    `jax.lax.fori_loop`. Returns the state and each step's loss and accuracy
    (stack_size,), NaN for the steps not run."""
    def one_step(i, carry):
        state, losses, accuracies = carry
        state, loss, accuracy = step(i, state)
        return state, losses.at[i].set(loss), accuracies.at[i].set(accuracy)

    unused = jnp.full(stack_size, jnp.nan, jnp.float32)
    state, losses, accuracies = jax.lax.fori_loop(
        0, count, one_step, (state, unused, unused))
    return state, (losses, accuracies)
# --8<-- [end:steps_in_one_loop]


# --8<-- [start:masked_prediction_steps]
@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "vocab_size", "rate", "max_predictions"),
    donate_argnames="state",
    compiler_options=STEP_COMPILER_OPTIONS,
)
def masked_prediction_steps(state, key, first_step, tokens, segments, count, *,
                            graphdef, vocab_size, rate, max_predictions):
    """`fused_masked_prediction_step` on the first `count` batches of a stack (S, B, T),
    in one compiled program (a `jax.lax.fori_loop`); step `first_step + i`
    masks batch `i`, as one call per step would.

    `count` is a value, not a shape: a run's last, shorter call runs the same
    program. Returns the new state and each step's loss and accuracy (S,).
    """
    def one_step(i, state):
        # the step's function, traced into this program
        return fused_masked_prediction_step.__wrapped__(
            state, key, first_step + i, tokens[i], segments[i], graphdef=graphdef,
            vocab_size=vocab_size, rate=rate, max_predictions=max_predictions)

    return steps_in_one_loop(one_step, state, count, tokens.shape[0])
# --8<-- [end:masked_prediction_steps]


def call_stacks(n_examples: int, batch_size: int, steps: int, seed: int, *, start: int = 0,
                every: int | None = None) -> Iterator[tuple[int, np.ndarray, int]]:
    """`batch_indices` in stacks of `STEPS_PER_CALL` batches: (first step, indices
    (STEPS_PER_CALL, B), steps to run). A stack that runs fewer steps is filled
    up with copies of its last batch, which the loops do not run.

    The stacks start at step `start` (the batches before it are drawn but not
    given: a resumed run gets the very batches it would have had), and with
    `every` no stack runs past a multiple of it, so that a checkpoint can be
    taken there. How steps are grouped into calls does not change what they
    compute: every call runs the same program, step by step.
    """
    order = np.stack(list(batch_indices(n_examples, batch_size, steps, seed)))  # (steps, B)
    first = start
    while first < steps:
        end = min(first + STEPS_PER_CALL, steps)
        if every:
            end = min(end, (first // every + 1) * every)
        stack = order[first:end]
        yield first, np.concatenate([stack, np.repeat(stack[-1:], STEPS_PER_CALL - len(stack), axis=0)]), end - first
        first = end


def masking_args(vocab_size: int, max_len: int, mask_rate: float) -> dict:
    """The static arguments `fused_masked_prediction_step` takes besides the graph definition."""
    return {"vocab_size": vocab_size, "rate": mask_rate, "max_predictions": max_predictions_for(max_len, mask_rate)}


# XLA compiles in C++ without Python's lock, so a compilation on this thread
# runs beside Python work on the main one. (Two compilations never overlap: XLA
# runs one at a time, hence one thread.)
_COMPILER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="learnjax-compile")


def compile_in_background(lowered: jax.stages.Lowered) -> Future:
    """Compiles a traced function (`jitted.lower(...)`) on the background thread;
    a later call of the jitted function with the same shapes uses that program."""
    return _COMPILER.submit(lowered.compile)


def compile_masked_prediction_steps(shapes: tuple[nnx.Module, nnx.Optimizer], *, batch_size: int, max_len: int, mask_rate: float = 0.15) -> Future:
    """Starts compiling `masked_prediction_steps`, the program `train_masked_prediction` runs,
    for a model and optimizer of these shapes (from `nnx.eval_shape`: no
    parameter needs to exist yet), and returns without waiting for it.

    The step is traced here, and XLA compiles it on a background thread while
    this one goes on: encoding the corpus, initialising the parameters. A
    `train_masked_prediction` call with those shapes then finds the program in jit's
    cache, which is keyed by shapes and static arguments, not by values.
    """
    mask_rate = check_mask_rate(mask_rate)
    graphdef, state = nnx.split(shapes)
    stack = jax.ShapeDtypeStruct((STEPS_PER_CALL, batch_size, max_len), jnp.int32)
    lowered = masked_prediction_steps.lower(state, jax.random.key(0), 0, stack, stack, 1, graphdef=graphdef,
                                    **masking_args(shapes[0].config.vocab_size, max_len, mask_rate))
    return compile_in_background(lowered)


def compile_next_word_steps(shapes: tuple[nnx.Module, nnx.Optimizer], *, batch_size: int, max_len: int) -> Future:
    """`compile_masked_prediction_steps` for `next_word_steps`, the program `train_next_word` runs."""
    graphdef, state = nnx.split(shapes)
    stack = jax.ShapeDtypeStruct((STEPS_PER_CALL, batch_size, max_len), jnp.int32)
    return compile_in_background(next_word_steps.lower(state, stack, stack, stack, 1, graphdef=graphdef))


# --8<-- [start:run_calls]
def run_calls(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    arrays: tuple[np.ndarray, ...],
    call,
    *,
    steps: int,
    batch_size: int,
    seed: int,
    progress: bool,
    desc: str,
    mesh=None,
    fsdp: bool = False,
    checkpointing: Checkpointing | None = None,
) -> History:
    """The loop every training function shares: batches of the `arrays` (N, ...)
    in shuffled order (`call_stacks`), `STEPS_PER_CALL` per compiled call of
    `call(state, graphdef, first_step, count, *stacks)`, which returns the new
    state and each step's loss and accuracy; a progress bar; the history.

    With a device `mesh` (`learnjax.training.sharding.data_mesh`) each batch is split
    over its devices and the state is replicated on them, or, with `fsdp`,
    split over them too: the same compiled step runs on all of them at once.

    With `checkpointing`, the state is handed to its `save` every `every`
    steps, and a run resumed from a checkpoint starts at its step (see
    `Checkpointing`).

    Losses are read back one call behind: reading a value waits for its call to
    finish, and an idle queue until Python sends the next one, so reading only
    calls that are one behind keeps the next one queued meanwhile.
    """
    checkpointing = checkpointing or Checkpointing()
    history = History(list(checkpointing.history.loss),
                      list(checkpointing.history.accuracy))
    if steps < 1:
        return history
    if (not 0 <= checkpointing.start <= steps
            or len(history.loss) != checkpointing.start):
        raise ValueError(f"cannot resume at step {checkpointing.start} of {steps} "
                         f"with the losses of {len(history.loss)} steps")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("the arrays to train on have different lengths: "
                         f"{[len(a) for a in arrays]}")
    graphdef, state = nnx.split((model, optimizer))
    if mesh is not None:
        sharding.check_batch(batch_size, mesh)
        layout = sharding.state_shardings(state, mesh, fsdp)
        state = sharding.place(state, layout)
    bar = tqdm(total=steps, initial=checkpointing.start, desc=desc, unit="step",
               disable=None if progress else True, leave=False, mininterval=0.5)
    pending = []

    def read_back(calls):
        for (losses, accuracies), count in calls:
            history.loss.extend(sharding.fetch(losses)[:count].tolist())
            history.accuracy.extend(sharding.fetch(accuracies)[:count].tolist())
        check_finite(history.loss[-1], len(history.loss) - 1)  # the step it came from
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}")

    try:
        every = checkpointing.every if checkpointing.save else None
        for first, idx, count in call_stacks(n, batch_size, steps, seed,
                                             start=checkpointing.start, every=every):
            batches = tuple(a[idx] for a in arrays)
            if mesh is not None:
                batches = tuple(sharding.place_batches(b, mesh) for b in batches)
            state, metrics = call(state, graphdef, first, count, *batches)
            if mesh is not None:
                # the layout it had: the next call runs the same program
                state = jax.device_put(state, layout)
            pending.append((metrics, count))
            if len(pending) == 2:
                read_back(pending[:1])
                del pending[:1]
            bar.update(count)
            reached = first + count
            if every and reached % every == 0 and reached < steps:
                read_back(pending)  # the history up to here, checked
                pending.clear()
                nnx.update((model, optimizer), state)
                checkpointing.save(reached, history)
        if pending:
            read_back(pending)
    finally:
        # A call may consume (donate) the buffers the model held: give it the
        # latest ones.
        nnx.update((model, optimizer), state)
        bar.close()
    return history
# --8<-- [end:run_calls]


def train_masked_prediction(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    tokens: np.ndarray,
    segments: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    seed: int = 0,
    mask_rate: float = 0.15,
    progress: bool = False,
    mesh=None,
    fsdp: bool = False,
    checkpointing: Checkpointing | None = None,
) -> History:
    """Runs `steps` masked-prediction steps over packed token rows (N, T),
    `STEPS_PER_CALL` per compiled call (`masked_prediction_steps`); over the
    devices of `mesh`, if given; checkpointed or resumed by `checkpointing` (see `run_calls`)."""
    static = masking_args(model.config.vocab_size, tokens.shape[1], check_mask_rate(mask_rate))
    key = jax.random.key(seed)

    def call(state, graphdef, first, count, tokens, segments):
        return masked_prediction_steps(state, key, first, tokens, segments, count, graphdef=graphdef, **static)

    return run_calls(model, optimizer, (tokens, segments), call, steps=steps, batch_size=batch_size, seed=seed,
                     progress=progress, desc="pre-training", mesh=mesh, fsdp=fsdp, checkpointing=checkpointing)


# --8<-- [start:loop_over_batches]
def loop_over_batches(update, graphdef, state, count, batches):
    """`update(model, optimizer, *batch)` on the first `count` batches of stacked
    arrays (S, B, ...), as a `jax.lax.fori_loop` of the split (model, optimizer)
    state. `count` is a value, not a shape: a run's last, shorter call runs the
    same program, and the stack's unused batches cost nothing. Returns the new
    state and each step's loss and accuracy (S,)."""
    def one_step(i, state):
        model, optimizer = nnx.merge(graphdef, state)
        loss, accuracy = update(model, optimizer, *(b[i] for b in batches))
        return nnx.state((model, optimizer)), loss, accuracy

    return steps_in_one_loop(one_step, state, count, batches[0].shape[0])
# --8<-- [end:loop_over_batches]


# --8<-- [start:supervised_steps]
@functools.partial(jax.jit, static_argnames="graphdef")
def supervised_steps(state, tokens, labels, count, *, graphdef):
    """`supervised_update` on the first `count` batches of a stack (S, B, ...),
    in one compiled program (`loop_over_batches`)."""
    return loop_over_batches(supervised_update, graphdef, state, count,
                             (tokens, labels))
# --8<-- [end:supervised_steps]


def train_classifier(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    tokens: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    seed: int = 0,
    progress: bool = False,
    mesh=None,
    fsdp: bool = False,
    checkpointing: Checkpointing | None = None,
) -> History:
    """Runs `steps` supervised steps on (tokens, labels), `STEPS_PER_CALL` per
    compiled call; over the devices of `mesh`, if given; checkpointed or resumed by `checkpointing` (see `run_calls`)."""
    tokens, labels = np.asarray(tokens), np.asarray(labels, dtype=np.int32)
    if len(tokens) != len(labels):
        raise ValueError(f"{len(tokens)} token rows but {len(labels)} labels")

    def call(state, graphdef, first, count, tokens, labels):
        return supervised_steps(state, tokens, labels, count, graphdef=graphdef)

    return run_calls(model, optimizer, (tokens, labels), call, steps=steps, batch_size=batch_size, seed=seed,
                     progress=progress, desc="training", mesh=mesh, fsdp=fsdp, checkpointing=checkpointing)


def padded_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """`rows` with rows of zeros added up to a multiple of `size`: every batch of
    `size` rows then runs the same compiled program."""
    return np.concatenate([rows, np.zeros((-len(rows) % size, *rows.shape[1:]), rows.dtype)])


def predict(model: nnx.Module, tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits for token rows, computed in fixed-size batches (the last one padded)."""
    return _in_batches(predict_logits, model, tokens, batch_size)


def head_features(model: nnx.Module, tokens: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """What a classifier's head reads of each text (`EncoderClassifier.features`),
    in batches of `batch_size` whatever the number of texts: one compiled
    program serves runs on any number of labels."""
    return _in_batches(classifier_features, model, tokens, batch_size, pad_to_batch=True)


def _in_batches(compiled, model: nnx.Module, tokens: np.ndarray, batch_size: int, pad_to_batch: bool = False) -> np.ndarray:
    tokens = np.asarray(tokens)
    n = len(tokens)
    if n == 0:
        raise ValueError("no rows to predict")
    size = batch_size if pad_to_batch else min(batch_size, n)
    padded = padded_rows(tokens, size)
    outputs = [compiled(model, jnp.asarray(padded[i : i + size])) for i in range(0, len(padded), size)]
    return np.concatenate(jax.device_get(outputs))[:n]


def accuracy(model: nnx.Module, tokens: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose highest-scoring class is the label."""
    return float((predict(model, tokens).argmax(-1) == np.asarray(labels)).mean())


# --8<-- [start:next_word_steps]
@functools.partial(jax.jit, static_argnames="graphdef", donate_argnames="state", compiler_options=STEP_COMPILER_OPTIONS)
def next_word_steps(state, tokens, segments, learn, count, *, graphdef):
    """`next_word_update` on the first `count` batches of a stack (S, B, T), in
    one compiled program (`loop_over_batches`)."""
    return loop_over_batches(next_word_update, graphdef, state, count, (tokens, segments, learn))
# --8<-- [end:next_word_steps]


def train_next_word(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    tokens: np.ndarray,
    segments: np.ndarray,
    learn: np.ndarray | None = None,
    *,
    steps: int,
    batch_size: int,
    seed: int = 0,
    progress: bool = False,
    desc: str = "pre-training",
    mesh=None,
    fsdp: bool = False,
    checkpointing: Checkpointing | None = None,
) -> History:
    """Runs `steps` next-word steps over packed rows (N, T), `STEPS_PER_CALL` per
    compiled call. `learn` (N, T) marks the tokens to learn to predict (default:
    every real token). The model must own its arrays (`owned_copy`): the steps
    reuse their buffers. Checkpointed or resumed by `checkpointing` (see `run_calls`)."""
    learn = (segments > 0) if learn is None else learn

    def call(state, graphdef, first, count, tokens, segments, learn):
        return next_word_steps(state, tokens, segments, learn, count, graphdef=graphdef)

    return run_calls(model, optimizer, (tokens, segments, np.asarray(learn, np.int32)), call, steps=steps,
                     batch_size=batch_size, seed=seed, progress=progress, desc=desc, mesh=mesh, fsdp=fsdp,
                     checkpointing=checkpointing)
