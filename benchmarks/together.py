"""Training many small models at once under `jax.vmap`, measured against training
them one after another: an idea the experiments do not use, and why.

An experiment that compares settings (learning rates, seeds, numbers of labels,
amounts of text) trains dozens of small models of one shape. One after another,
each run is a few small XLA calls that leave the CPU half idle, and each new
setting that is part of the program's static structure compiles it again. JAX's
answer is `jax.vmap`: stack the runs' states along a new leading axis (R, ...)
and map the training loop over it. The R runs then share one compiled program
whose matrix products are R times bigger, and the settings that differ (the
data, the seed, the learning rate, a value in the optimizer's state since
`training.adamw`) are just more values along that axis.

The runs of one call must have the same structure: the same model shape and the
same optimizer filter (a frozen encoder and a trained one are two calls).

On this project's 2-core CPU it does not pay at the site's sizes: the batched
products and scatters XLA's CPU backend compiles for R runs take as much CPU
time as the R runs one after another, and the batched program takes longer to
compile. The experiments therefore run one after another, sharing one compiled
program (the learning rate is a value in the optimizer state, so runs at
different rates reuse it). On an accelerator the balance differs; measure:

    python -m benchmarks.together          # fine-tuning runs and pre-training runs, both ways
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from learnjax.storage.progress import History
from learnjax.training.loops import call_stacks, check_finite, masked_prediction_steps, masking_args, supervised_steps


def stack(trees: Sequence) -> object:
    """Pytrees of one structure stacked into one with a leading run axis (R, ...)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def split_together(runs: Sequence) -> tuple[nnx.GraphDef, nnx.State]:
    """The shared graph definition of `runs` (modules, or tuples of modules) and
    their states stacked along a leading run axis."""
    graphdefs, states = zip(*(nnx.split(run) for run in runs))
    if any(g != graphdefs[0] for g in graphdefs[1:]):
        raise ValueError("runs trained together must have the same structure (model shape and optimizer filter)")
    return graphdefs[0], stack(states)


def update_together(runs: Sequence, stacked: nnx.State) -> None:
    """Hands each run its slice of the stacked state."""
    for i, run in enumerate(runs):
        nnx.update(run, jax.tree.map(lambda leaf: leaf[i], stacked))


# --8<-- [start:supervised_steps_together]
@functools.partial(jax.jit, static_argnames="graphdef", donate_argnames="states")
def supervised_steps_together(states, tokens, labels, count, *, graphdef):
    """`supervised_steps` for R runs at once: states stacked (R, ...), batches
    (R, S, B, T) and labels (R, S, B). Returns the new states and each run's
    losses and accuracies (R, S)."""
    one_run = functools.partial(supervised_steps.__wrapped__, graphdef=graphdef)  # the loop's function, not its compiled form
    return jax.vmap(one_run, in_axes=(0, 0, 0, None))(states, tokens, labels, count)
# --8<-- [end:supervised_steps_together]


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="step", disable=None if progress else True, leave=False, mininterval=0.5)


def train_classifiers_together(
    runs: Sequence[tuple[nnx.Module, nnx.Optimizer]],
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    steps: int,
    batch_size: int,
    seeds: Sequence[int],
    progress: bool = False,
) -> list[History]:
    """`training.train_classifier` for many (model, optimizer) runs at once, run
    `i` on its own examples `data[i]` = (tokens (N_i, T), labels (N_i,)) with its
    own batch order (`seeds[i]`): each run draws exactly the batches it would
    draw alone. The models and optimizers are updated in place."""
    if not (len(runs) == len(data) == len(seeds)):
        raise ValueError(f"{len(runs)} runs, {len(data)} datasets and {len(seeds)} seeds: one each per run")
    graphdef, states = split_together(runs)
    orders = [list(call_stacks(len(tokens), batch_size, steps, seed)) for (tokens, _), seed in zip(data, seeds)]
    metrics = []
    bar = _bar(steps, f"training {len(runs)} models together", progress)
    try:
        for call in range(len(orders[0])):
            tokens = np.stack([run_tokens[order[call][1]] for (run_tokens, _), order in zip(data, orders)])  # (R, S, B, T)
            labels = np.stack([run_labels[order[call][1]] for (_, run_labels), order in zip(data, orders)])  # (R, S, B)
            count = orders[0][call][2]
            states, (losses, accuracies) = supervised_steps_together(states, tokens, labels.astype(np.int32), count, graphdef=graphdef)
            metrics.append((losses, accuracies))
            bar.update(count)
    finally:
        update_together(runs, states)
        bar.close()
    return _histories(metrics, len(runs), steps)


def _histories(metrics: list, n_runs: int, steps: int) -> list[History]:
    losses, accuracies = (np.concatenate(values, axis=1)[:, :steps] for values in zip(*jax.device_get(metrics)))  # (R, steps)
    histories = [History(loss.tolist(), accuracy.tolist()) for loss, accuracy in zip(losses, accuracies)]
    for history in histories:
        check_finite(history.loss[-1], steps - 1)
    return histories


@functools.partial(jax.jit, static_argnames="graphdef")
def _outputs_together(states, tokens, *, graphdef):
    return jax.vmap(lambda state: nnx.merge(graphdef, state)(tokens))(states)  # (R, B, ...)


def predict_together(models: Sequence[nnx.Module], tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Every model's outputs for the same token rows (R, N, ...), in fixed-size batches."""
    graphdef, states = split_together(models)
    tokens = np.asarray(tokens)
    n = len(tokens)
    size = min(batch_size, n)
    padded = np.concatenate([tokens, np.zeros((-n % size, tokens.shape[1]), tokens.dtype)])
    outputs = [_outputs_together(states, padded[i : i + size], graphdef=graphdef) for i in range(0, len(padded), size)]
    return np.concatenate(jax.device_get(outputs), axis=1)[:, :n]


@functools.partial(jax.jit, static_argnames=("graphdef", "vocab_size", "rate", "max_predictions"), donate_argnames="states")
def masked_prediction_steps_together(states, key, first_step, tokens, segments, count, *, graphdef, vocab_size, rate, max_predictions):
    """`masked_prediction_steps` for R runs at once: states stacked (R, ...), batches (R, S, B, T)."""
    one_run = functools.partial(masked_prediction_steps.__wrapped__, graphdef=graphdef, vocab_size=vocab_size, rate=rate,
                                max_predictions=max_predictions)
    return jax.vmap(one_run, in_axes=(0, None, None, 0, 0, None))(states, key, first_step, tokens, segments, count)


def train_masked_prediction_together(
    runs: Sequence[tuple[nnx.Module, nnx.Optimizer]],
    data: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    steps: int,
    batch_size: int,
    seed: int,
    mask_rate: float,
    progress: bool = False,
) -> list[History]:
    """`training.train_masked_prediction` for many runs at once, run `i` on its own
    packed rows `data[i]` = (tokens, segments), all with the same seed (the same
    masking keys, and batch orders drawn alike)."""
    graphdef, states = split_together(runs)
    static = masking_args(runs[0][0].config.vocab_size, data[0][0].shape[1], mask_rate)
    orders = [list(call_stacks(len(tokens), batch_size, steps, seed)) for tokens, _ in data]
    key = jax.random.key(seed)
    metrics = []
    bar = _bar(steps, f"pre-training {len(runs)} models together", progress)
    try:
        for call in range(len(orders[0])):
            first, count = orders[0][call][0], orders[0][call][2]
            tokens = np.stack([run_tokens[order[call][1]] for (run_tokens, _), order in zip(data, orders)])
            segments = np.stack([run_segments[order[call][1]] for (_, run_segments), order in zip(data, orders)])
            states, run_metrics = masked_prediction_steps_together(states, key, first, tokens, segments, count, graphdef=graphdef, **static)
            metrics.append(run_metrics)
            bar.update(count)
    finally:
        update_together(runs, states)
        bar.close()
    return _histories(metrics, len(runs), steps)



def _fine_tuning_runs(n_runs: int):
    from learnjax.data import messages
    from learnjax.training.finetuning import FinetuneSettings, build_classifier
    from learnjax.training.loops import adamw, new_optimizer
    from learnjax.training.pretraining import foundation_model

    foundation, settings = foundation_model(), FinetuneSettings()
    pool = messages.labeled_splits()["pool"]
    tx = adamw(settings.steps, settings.warmup_steps, settings.weight_decay)
    runs, data = [], []
    for i in range(n_runs):
        labeled = messages.balanced_subset(pool, 64, i)
        model, trainable = build_classifier(foundation, "full", 2, i)
        runs.append((model, new_optimizer(model, tx, (3e-4, 1e-3, 3e-3, 1e-2)[i % 4], trainable)))
        data.append((foundation.tokenizer.encode_batch([m.text for m in labeled], messages.MESSAGE_MAX_LEN), np.array([m.label for m in labeled])))
    return runs, data, settings


def main() -> int:
    """Fine-tuning runs of the label-efficiency experiment's shape, together and one
    after another: CPU seconds, compilation included, in this process."""
    import time

    from learnjax.training.loops import train_classifier

    n_runs = 28
    for name in ("one after another", "together (vmap)", "one after another", "together (vmap)"):
        runs, data, settings = _fine_tuning_runs(n_runs)
        started = time.process_time()
        if name.startswith("together"):
            train_classifiers_together(runs, data, steps=settings.steps, batch_size=settings.batch_size, seeds=list(range(n_runs)))
        else:
            for (model, optimizer), (tokens, labels), seed in zip(runs, data, range(n_runs)):
                train_classifier(model, optimizer, tokens, labels, steps=settings.steps, batch_size=settings.batch_size, seed=seed)
        print(f"{n_runs} fine-tuning runs, {name:<18}: {time.process_time() - started:6.1f} CPU s (the first of each includes compiling)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
