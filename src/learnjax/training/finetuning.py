"""Fine-tuning: adapt the foundation model to one task with a few labeled examples.

Four ways to build the spam classifier, all on the same architecture (the
pre-trained encoder's shape plus a new linear head) and trained with the same
step, `supervised_update` (what `supervised_step` compiles):

- `full`: start from the pre-trained encoder and update every parameter;
- `probe`: start from the pre-trained encoder and freeze it, training only the
  head (the optimizer's `wrt` filter leaves the encoder out);
- `lora`: freeze the pre-trained encoder and train low-rank adapters in its
  layers (`learnjax.models.lora`) with the head;
- `scratch`: the same architecture from a random initialisation: supervised
  learning alone, no pre-training.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from learnjax.models.batching import batch_bucket
from learnjax.models.lora import add_lora, merge_lora
from learnjax.models.transformer import EncoderClassifier, Transformer
from learnjax.storage import checkpoints
from learnjax.storage.progress import History
from learnjax.text.tokenizer import CLS_ID, PAD_ID, BaseTokenizer
from learnjax.training.foundation import Foundation
from learnjax.training.loops import adamw, head_features, new_optimizer, padded_rows, predict, train_classifier

MODES = ("full", "probe", "lora", "scratch")
HEAD_SEED_OFFSET = 1000
LORA_RANK, LORA_ALPHA = 8, 16.0
# How a text longer than the model's rows is read, in fine-tuning and in
# classification alike: by its first window of tokens alone, or by all of its
# windows, the text's logits the mean of theirs (`EncoderClassifier`).
WINDOWS = ("first", "average")


def check_windows(windows: str) -> str:
    if windows not in WINDOWS:
        raise ValueError(f"windows must be one of {', '.join(WINDOWS)}; got {windows!r}")
    return windows


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


# --8<-- [start:build_classifier]
def build_classifier(
    foundation: Foundation, mode: str, n_classes: int = 2, seed: int = 0
) -> tuple[EncoderClassifier, "nnx.filterlib.Filter"]:
    """A classifier for `mode`, and the filter of the parameters to train."""
    rngs = nnx.Rngs(seed)
    if mode == "scratch":
        # Random weights, in the same shape.
        encoder = Transformer(foundation.model.config, rngs=rngs)
    else:
        # A copy: the foundation stays as it is.
        encoder = nnx.clone(foundation.model.encoder)
    model = EncoderClassifier(encoder, n_classes, rngs=rngs)
    head = nnx.All(nnx.Param, nnx.PathContains("head"))
    if mode == "probe":
        return model, head
    if mode == "lora":
        return (add_lora(model, LORA_RANK, LORA_ALPHA, seed),
                nnx.Any(nnx.LoRAParam, head))
    return model, nnx.Param
# --8<-- [end:build_classifier]


@dataclass(frozen=True)
class FinetuneSettings:
    """The training budget, the same for every mode, and how long texts are read."""

    steps: int = 80
    batch_size: int = 16
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.01
    # Every window of a long text, up to `max_windows` of them in training (a
    # few very long texts must not make every batch that many rows deep); a
    # classifier reads texts as it was trained to.
    windows: str = "average"
    max_windows: int = 8
    # Steps that train the new head alone, on the frozen encoder, before the
    # `steps` that train what the mode trains (in every mode, so that every
    # mode gets the same budget). A random head's first gradients would
    # otherwise reach the pre-trained encoder and pull it towards whatever the
    # head happens to say.
    head_steps: int = 80

    def __post_init__(self):
        check_windows(self.windows)
        for name, least, what in (("max_windows", 1, "a positive whole number"), ("head_steps", 0, "a whole number, 0 or more")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name}={value!r} must be {what}")


@dataclass
class TextClassifier:
    """A fine-tuned classifier with its tokenizer and label names."""

    model: EncoderClassifier
    tokenizer: BaseTokenizer
    labels: tuple[str, ...]
    mode: str
    history: History
    windows: str = "first"  # how it was trained to read long texts (a model saved before windows were recorded: the first)

    def predict_proba(self, texts: list[str], windows: str | None = None) -> np.ndarray:
        """The probability of each label (N, labels). A text longer than a row is
        read as the classifier was trained (`windows`: its first window of
        tokens, or all of them, averaged), unless `windows` says otherwise.
        "average" reads every window (`encode_windows`), however many, and
        takes the mean of their logits, as `EncoderClassifier` does in training."""

        windows = check_windows(windows or self.windows)
        max_len = self.model.encoder.config.max_len
        if windows == "first":
            rows, owners = self.tokenizer.encode_batch(texts, max_len), np.arange(len(texts))
        else:
            rows, owners = self.tokenizer.encode_windows(texts, max_len)
        logits = _predict_in_blocks(self.model, rows)
        sums = np.zeros((len(texts), logits.shape[1]))
        np.add.at(sums, owners, logits)
        return np.asarray(jax.nn.softmax(sums / np.bincount(owners, minlength=len(texts))[:, None], axis=-1))

    def classify(self, texts: list[str], windows: str | None = None) -> list[tuple[str, float]]:
        """The most likely label of each text, with its probability."""
        probs = self.predict_proba(texts, windows)
        return [(self.labels[int(row.argmax())], float(row.max())) for row in probs]

    def save(self, directory: str | os.PathLike) -> Path:
        metadata = {"labels": list(self.labels), "mode": self.mode, "windows": self.windows,
                    "history": {"loss": self.history.loss, "accuracy": self.history.accuracy}}
        model = merge_lora(nnx.clone(self.model)) if self.mode == "lora" else self.model  # saved as plain weights
        return checkpoints.save(directory, model, self.tokenizer, "classifier", metadata)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TextClassifier:
        manifest, tokenizer, config = checkpoints.open_checkpoint(directory, "classifier")
        with checkpoints.reading_metadata(directory):
            meta = manifest.get("metadata", {})
            labels = tuple(meta.get("labels") or ())
            history = History(**meta["history"]) if meta.get("history") else History()
        if len(labels) < 2 or not all(isinstance(label, str) for label in labels):
            raise checkpoints.CheckpointError(f"{str(directory)!r} names labels {list(labels)[:5]}; a classifier needs at least 2, as strings")
        model = nnx.eval_shape(lambda: EncoderClassifier(Transformer(config, rngs=nnx.Rngs(0)), len(labels), rngs=nnx.Rngs(0)))
        checkpoints.restore_into(directory, model, manifest)
        windows = meta.get("windows", "first")
        if windows not in WINDOWS:
            raise checkpoints.CheckpointError(f"{str(directory)!r} says it reads long texts by {windows!r}; expected one of {', '.join(WINDOWS)}")
        return cls(model, tokenizer, labels, meta.get("mode", "full"), history, windows)


def finetune(
    foundation: Foundation,
    texts: list[str],
    labels: list[str] | list[int],
    *,
    mode: str = "full",
    settings: FinetuneSettings = FinetuneSettings(),
    seed: int = 0,
    label_names: tuple[str, ...] | None = None,
    max_len: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = False,
    mesh=None,
    fsdp: bool = False,
) -> TextClassifier:
    """Fine-tunes a classifier on labeled `texts` (over the devices of `mesh`,
    if given: see `learnjax.training.sharding`).

    `labels` are label names (any strings) or class indices into `label_names`.
    `max_len` (at most the foundation's) sets the row length; shorter rows are
    faster. A longer text is learned from all its windows of tokens, up to
    `settings.max_windows`, its logits the mean of theirs, as the classifier
    then reads it (`settings.windows="first"`: from its first window alone).
    The first `settings.head_steps` steps train the new head alone (`warm_up_head`).
    `checkpoint_dir`, `checkpoint_every` and `resume` checkpoint the run and
    resume it, as `learnjax.training.pretraining.pretrain` does.
    """
    model, optimizer, tokens, label_ids, label_names = _prepare(foundation, texts, labels, mode, seed, settings, label_names, max_len)
    if checkpoint_dir is None and (resume or checkpoint_every):
        raise ValueError("checkpoint_every and resume need a checkpoint_dir")
    if settings.head_steps:
        # Before any checkpoint is read: a resumed run then restores what the uninterrupted one had reached.
        warm_up_head(model, tokens, label_ids, settings, seed, mesh=mesh, fsdp=fsdp)
    checkpointing = None
    if checkpoint_dir is not None:
        run_settings = {"mode": mode, "seed": seed, **dataclasses.asdict(settings), "labels": list(label_names),
                        "data": checkpoints.data_fingerprint(tokens, label_ids), "foundation": checkpoints.params_fingerprint(foundation.model)}
        checkpointing = checkpoints.TrainingCheckpoints(checkpoint_dir, "classifier").checkpointing(
            model, optimizer, foundation.tokenizer, run_settings, every=checkpoint_every, resume=resume)
    history = train_classifier(model, optimizer, tokens, label_ids, steps=settings.steps, batch_size=settings.batch_size, seed=seed,
                               progress=progress, mesh=mesh, fsdp=fsdp, checkpointing=checkpointing)
    return TextClassifier(model, foundation.tokenizer, label_names, mode, history, settings.windows)


# --8<-- [start:warm_up_head]
def warm_up_head(model, tokens, label_ids, settings, seed: int, **devices) -> History:
    """`settings.head_steps` steps that train the head alone, the encoder frozen."""
    # Frozen, the encoder gives each text the same features at every step:
    # computed once, they are all the head's steps need to read.
    features = head_features(model, tokens)  # (N, d_model)
    schedule = adamw(settings.head_steps, settings.warmup_steps, settings.weight_decay)
    optimizer = new_optimizer(model.head, schedule, settings.learning_rate)
    return train_classifier(
        model.head, optimizer, features, label_ids, steps=settings.head_steps,
        batch_size=settings.batch_size,
        seed=seed + HEAD_SEED_OFFSET,  # another batch order than the steps after it
        **devices)
# --8<-- [end:warm_up_head]


def _prepare(foundation: Foundation, texts, labels, mode: str, seed: int, settings: FinetuneSettings, label_names, max_len):
    """The model, optimizer, token rows, label ids and label names of one run, each checked."""
    check_mode(mode)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise ValueError("no labeled examples to fine-tune on")
    names, label_ids = _label_ids(labels, label_names)
    if len(set(label_ids.tolist())) < 2:
        raise ValueError(f"the labels hold a single class ({names[int(label_ids[0])]!r}); a classifier needs examples of at least two")
    tokens = training_rows(foundation.tokenizer, texts, _check_max_len(foundation, max_len), settings)
    model, trainable = build_classifier(foundation, mode, len(names), seed)
    # The same transform for every run of these settings, the rate a value in its state: one compiled program for all.
    optimizer = new_optimizer(model, adamw(settings.steps, settings.warmup_steps, settings.weight_decay), settings.learning_rate, trainable)
    return model, optimizer, tokens, label_ids, names


def training_rows(tokenizer: BaseTokenizer, texts: list[str], max_len: int, settings: FinetuneSettings) -> np.ndarray:
    """What fine-tuning reads of each text: its first row (N, T), or its
    windows (N, W, T) (the rows (N, T) if every text fits in one), W the most any text has (at most `settings.max_windows`)
    rounded up to a power of two (fewer shapes to compile) within that limit, a shorter text's
    missing windows `[CLS]`-only rows, which `EncoderClassifier` leaves out."""
    if settings.windows == "first":
        return tokenizer.encode_batch(texts, max_len)
    rows, owners = tokenizer.encode_windows(texts, max_len)
    starts = np.searchsorted(owners, np.arange(len(texts)))  # each text's first window
    index = np.arange(len(owners)) - starts[owners]  # each window's place in its text
    depth = min(1 << int(index.max()).bit_length(), settings.max_windows)
    stacked = np.full((len(texts), depth, max_len), PAD_ID, np.int32)
    stacked[:, :, 0] = CLS_ID
    kept = index < depth
    stacked[owners[kept], index[kept]] = rows[kept]
    return stacked if depth > 1 else stacked[:, 0]  # texts of one row each: the rows, as the model reads them alike


def _label_ids(labels: list[str] | list[int], label_names: tuple[str, ...] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Class indices for `labels`, given as names or as indices into `label_names`."""
    if label_names is None:
        label_names = tuple(sorted({str(label) for label in labels}))
    index = {name: i for i, name in enumerate(label_names)}
    ids = []
    for label in labels:
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if not 0 <= label < len(label_names):
                raise ValueError(f"label index {label} is outside the {len(label_names)} labels {list(label_names)}")
            ids.append(int(label))
        elif str(label) in index:
            ids.append(index[str(label)])
        else:
            raise ValueError(f"label {label!r} is not one of the model's labels {list(label_names)}")
    return tuple(label_names), np.array(ids, dtype=np.int32)


def _check_max_len(foundation: Foundation, max_len: int | None) -> int:
    limit = foundation.model.config.max_len
    if max_len is None:
        return limit
    if not 2 <= max_len <= limit:
        raise ValueError(f"max_len must be between 2 and the model's {limit}, got {max_len}")
    return max_len


def _predict_in_blocks(model: EncoderClassifier, rows: np.ndarray, block: int = 256) -> np.ndarray:
    """`predict` on `rows` padded to a power of two up to `block`, then to a
    multiple of it: texts read a chunk at a time run a few compiled programs,
    not one per chunk size."""
    n = len(rows)
    size = min(block, batch_bucket(n))
    return predict(model, padded_rows(rows, size), batch_size=size)[:n]
