"""Saving and loading models: a directory with a manifest, a tokenizer and parameters.

Why not orbax: these models are a few MB, saved and loaded synchronously by a
CLI and by tests. One msgpack file written with `flax.serialization` is
bit-exact and has no background threads. Atomicity comes from the layout: the
data files carry their content hash in their names and the manifest
(`learnjax.json`) is replaced last with `os.replace`, so a save that is cut off
at any point leaves the previous manifest, and the files it names, intact.
A save holds a lock on the directory (`.learnjax.lock`, left in place as lock
files must be), so that two processes saving at once cannot delete each other's
files; loading takes no lock, so a read-only model directory loads.

A model directory is untrusted input: the file names its manifest gives are
checked before anything is read or deleted.

The manifest records which kind of tokenizer the model reads with ("word" or
"subword"; a directory saved before there were two kinds is "word"). A training
run's intermediate checkpoints (`TrainingCheckpoints`) are model directories
too, with the optimizer's state and the run's progress added.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from filelock import FileLock
from flax import nnx, serialization

from learnjax.files.atomic import write_bytes
from learnjax.models.transformer import TransformerConfig
from learnjax.storage.progress import Checkpointing, History
from learnjax.text.loading import tokenizer_from_json
from learnjax.text.tokenizer import LEGACY_SPECIAL_TOKENS, TOKENIZER_KINDS, BaseTokenizer

FORMAT_VERSION = 1
MANIFEST = "learnjax.json"
LOCK = ".learnjax.lock"
# The data files, by manifest entry: (stem, suffix) of their names, `stem-<16 hex digits of sha256>suffix`.
DATA_FILES = {"params": ("params", ".msgpack"), "tokenizer": ("tokenizer", ".json"), "optimizer": ("optimizer", ".msgpack")}
REQUIRED_FILES = ("params", "tokenizer")  # the optimizer's state: in training checkpoints only
# Where the `learnjax` command keeps a run's intermediate checkpoints: a folder
# inside its output directory, apart from the model saved there.
CHECKPOINT_FOLDER = "checkpoint"
_DATA_FILE_NAMES = {key: re.compile(rf"{re.escape(stem)}-[0-9a-f]{{16}}{re.escape(suffix)}") for key, (stem, suffix) in DATA_FILES.items()}


class CheckpointError(ValueError):
    """A model directory that is missing, partial, corrupt or incompatible."""


def _write_blob(directory: Path, key: str, data: bytes) -> str:
    stem, suffix = DATA_FILES[key]
    name = f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if not (directory / name).exists():
        write_bytes(directory / name, data)
    return name


def _data_file(directory: str | os.PathLike, manifest: dict, key: str) -> Path:
    """The path of the data file that `manifest` names under `key` ("params" or
    "tokenizer"): a plain file name of the form `save` writes, in `directory`.

    A manifest is untrusted: a name such as '../notes.txt' would have loading
    read, and the next save delete, a file outside the model directory.
    """
    directory = Path(directory)
    name = manifest.get(key)
    if not (isinstance(name, str) and _DATA_FILE_NAMES[key].fullmatch(name)):
        stem, suffix = DATA_FILES[key]
        raise CheckpointError(f"{str(directory / MANIFEST)!r} names {key} file {name!r}, not a file name of the form {stem}-<16 hex digits>{suffix}")
    path = directory / name
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(directory):
        raise CheckpointError(f"{str(path)!r} links to {os.path.realpath(path)!r}, outside the model directory")
    return path


def _files_named_by(directory: Path, manifest: dict | None) -> set[Path]:
    """The data files that `manifest` (None: unreadable) names, each checked (`_data_file`)."""
    if not isinstance(manifest, dict):
        return set()
    return {_data_file(directory, manifest, key) for key in DATA_FILES if key in manifest}


def _state_bytes(module) -> bytes:
    return serialization.msgpack_serialize(jax.device_get(nnx.to_pure_dict(nnx.state(module))))


def save(
    directory: str | os.PathLike,
    model: nnx.Module,
    tokenizer: BaseTokenizer,
    kind: str,
    metadata: dict[str, Any] | None = None,
    *,
    optimizer: nnx.Optimizer | None = None,
) -> Path:
    """Saves `model` (its config, every nnx state variable) and `tokenizer` to `directory`,
    and the state of `optimizer` if given (a training checkpoint).

    `kind` names the model class ("masked_lm" or "classifier"); `metadata` is
    stored as it is (JSON) for the caller, e.g. label names or the recipe.
    """
    directory = Path(directory)
    config = model_config(model).to_dict()
    params = _state_bytes(model)
    directory.mkdir(parents=True, exist_ok=True)
    # Locked from reading the old manifest to deleting its files: two saves at once
    # would otherwise each delete files that the other's manifest names.
    with FileLock(directory / LOCK):
        old_files = _files_named_by(directory, _read_manifest_or_none(directory))  # checked before anything is written
        params_name = _write_blob(directory, "params", params)
        tokenizer_name = _write_blob(directory, "tokenizer", tokenizer.to_json().encode("utf-8"))
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "config": config,
            "params": params_name,
            "params_sha256": hashlib.sha256(params).hexdigest(),
            "tokenizer": tokenizer_name,
            "tokenizer_kind": tokenizer.kind,
            "vocab_size": len(tokenizer),
            "metadata": metadata or {},
        }
        if optimizer is not None:
            state = _state_bytes(optimizer)
            manifest.update(optimizer=_write_blob(directory, "optimizer", state), optimizer_sha256=hashlib.sha256(state).hexdigest())
        write_bytes(directory / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
        # The old files are unreferenced only now that the new manifest is in place.
        for path in old_files - {directory / manifest[key] for key in DATA_FILES if key in manifest}:
            path.unlink(missing_ok=True)
    return directory


def check_writable_model_dir(directory: str | os.PathLike, *, overwrite: bool = False, reading_from: str | os.PathLike | None = None) -> Path:
    """Checks, before any training, that a model can be saved to `directory`.

    It must be a directory, or creatable (it is not created here), and
    writable; not the model being read (`reading_from`); and it may hold a saved
    model only with `overwrite`. Raises a CheckpointError saying which.
    """
    directory = Path(directory)
    if reading_from is not None and directory.exists() and Path(reading_from).exists() and os.path.samefile(directory, reading_from):
        raise CheckpointError(f"{str(directory)!r} is the model being read; save to another directory")
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CheckpointError(f"cannot save to {str(directory)!r}: {str(existing)!r} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise CheckpointError(f"cannot save to {str(directory)!r}: {str(existing)!r} is not writable ({e.strerror})") from None
    if directory.is_dir() and not (directory / MANIFEST).exists() and (foreign := _not_learnjax_files(directory)):
        shown = ", ".join(repr(name) for name in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise CheckpointError(
            f"{str(directory)!r} is not empty and holds no learnjax model ({shown}); "
            "save to a new or empty directory (--overwrite replaces only a model)"
        )
    if (directory / MANIFEST).exists():
        manifest = _read_manifest_or_none(directory)
        _files_named_by(directory, manifest)  # a bad name would stop the save after training
        if not overwrite:
            kind = manifest.get("kind") if isinstance(manifest, dict) else None
            what = f"a {kind!r} model" if isinstance(kind, str) else f"a model ({MANIFEST} unreadable)"
            raise CheckpointError(
                f"{str(directory)!r} already holds {what}; replace it with --overwrite (overwrite=True), or choose another directory"
            )
    return directory


# What a save, or a training run's checkpoints, may leave in a directory before its manifest is written.
_LEFT_BY_A_SAVE = re.compile(rf"{re.escape(LOCK)}|\.?(?:{re.escape(MANIFEST)}|[a-z]+-[0-9a-f]{{16}}\.(?:msgpack|json))(?:\..*\.tmp)?")


def _not_learnjax_files(directory: Path) -> list[str]:
    """The names in `directory`, sorted, that no learnjax save wrote there: a
    user's own files, which a model must not be saved among."""
    foreign = []
    for path in sorted(directory.iterdir()):
        if path.name == CHECKPOINT_FOLDER and path.is_dir() and not path.is_symlink():
            foreign += [f"{CHECKPOINT_FOLDER}/{name}" for name in _not_learnjax_files(path)]
        elif not (_LEFT_BY_A_SAVE.fullmatch(path.name) and path.is_file()):
            foreign.append(path.name + ("/" if path.is_dir() else ""))
    return foreign


@contextlib.contextmanager
def reading_metadata(directory: str | os.PathLike) -> Iterator[None]:
    """Turns a malformed `metadata` entry (of the wrong types or fields) met while
    reading it into a one-line CheckpointError naming the directory."""
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{str(directory)!r}: its metadata is not what learnjax saves ({e})") from None


def model_config(model: nnx.Module) -> TransformerConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, TransformerConfig):
        raise CheckpointError(f"{type(model).__name__} has no Transformer configuration; only Transformer models are saved")
    return config


def _read_manifest_or_none(directory: Path) -> dict | None:
    if not (directory / MANIFEST).is_file():  # absent, or a pipe that would hang
        return None
    try:
        return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a model directory, checked for format and completeness."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{str(directory)!r} is a file, not a model directory")
    if not directory.is_dir():
        raise CheckpointError(f"model directory {str(directory)!r} does not exist")
    path = directory / MANIFEST
    if not path.exists():
        raise CheckpointError(f"{str(directory)!r} is not a learnjax model directory: {MANIFEST} is missing")
    if not path.is_file():  # a pipe or a device would hang or fill memory
        raise CheckpointError(f"{str(path)!r} is not a regular file")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # not UTF-8 or not JSON; nested too deep; an int of 5,000 digits
        raise CheckpointError(f"{str(path)!r} is corrupt: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise CheckpointError(f"{str(path)!r} has format version {version!r}; this learnjax reads version {FORMAT_VERSION}")
    for key, expected in (("kind", str), ("config", dict), ("params", str), ("params_sha256", str), ("tokenizer", str), ("vocab_size", int)):
        if key not in manifest:
            raise CheckpointError(f"{str(path)!r} is incomplete: no {key!r} entry")
        if not isinstance(manifest[key], expected):
            raise CheckpointError(f"{str(path)!r} has {key} {manifest[key]!r} (expected {expected.__name__})")
    if not isinstance(manifest.get("metadata", {}), dict):
        raise CheckpointError(f"{str(path)!r} has metadata {manifest['metadata']!r} (expected dict)")
    if manifest.get("tokenizer_kind", "word") not in TOKENIZER_KINDS:
        raise CheckpointError(f"{str(path)!r} has tokenizer kind {manifest['tokenizer_kind']!r}; this learnjax reads {', '.join(TOKENIZER_KINDS)}")
    for key in DATA_FILES:
        if key not in REQUIRED_FILES and key not in manifest:
            continue
        file = _data_file(directory, manifest, key)
        if not file.exists():
            raise CheckpointError(f"{str(directory)!r} is partial: {manifest[key]!r} is missing")
        if not file.is_file():
            raise CheckpointError(f"{str(file)!r} is not a regular file")
    return manifest


def open_checkpoint(directory: str | os.PathLike, kind: str | tuple[str, ...]) -> tuple[dict, BaseTokenizer, TransformerConfig]:
    """The manifest, tokenizer and encoder configuration of a saved model of
    `kind` (or of one of several kinds), each checked; the parameters are then
    loaded with `restore_into`."""
    manifest = read_manifest(directory)
    kinds = (kind,) if isinstance(kind, str) else kind
    if manifest["kind"] not in kinds:
        wanted = " or ".join(repr(k) for k in kinds)
        raise CheckpointError(f"{str(directory)!r} holds a {manifest['kind']!r} model, not a {wanted} model")
    tokenizer = load_tokenizer(directory, manifest)
    try:
        config = TransformerConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{str(directory)!r} has an incompatible configuration: {e}") from None
    if tokenizer.ids_shifted_by:  # saved with a format-1 tokenizer: see `_with_added_special_rows`
        config = TransformerConfig.from_dict({**manifest["config"], "vocab_size": config.vocab_size + tokenizer.ids_shifted_by})
        manifest = {**manifest, "added_special_rows": tokenizer.ids_shifted_by}
    if config.vocab_size != len(tokenizer):
        raise CheckpointError(f"{str(directory)!r}: model vocabulary {config.vocab_size} != tokenizer {len(tokenizer)}")
    return manifest, tokenizer, config


def load_tokenizer(directory: str | os.PathLike, manifest: dict | None = None) -> BaseTokenizer:
    """The tokenizer of a model directory, of the kind its manifest records."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    path = _data_file(directory, manifest, "tokenizer")
    try:
        tokenizer = tokenizer_from_json(path.read_text(encoding="utf-8"))
        if not all(isinstance(word, str) for word in tokenizer.vocab):
            raise ValueError("its vocabulary holds entries that are not strings")
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # TypeError: e.g. a vocabulary that is a number
        raise CheckpointError(f"tokenizer in {str(directory)!r} is corrupt: {e}") from None
    recorded = manifest.get("tokenizer_kind", "word")
    if tokenizer.kind != recorded:
        raise CheckpointError(f"tokenizer in {str(directory)!r} is a {tokenizer.kind} tokenizer, but the model was saved with a {recorded} tokenizer")
    if len(tokenizer) != manifest["vocab_size"] + tokenizer.ids_shifted_by:
        raise CheckpointError(f"tokenizer in {str(directory)!r} has {len(tokenizer)} words, the manifest says {manifest['vocab_size']}")
    return tokenizer


def _with_added_special_rows(saved: dict, n_added: int) -> dict:
    """Saved parameters of a format-1 model, with zero rows for the added special
    tokens in its vocabulary-sized arrays (the token embeddings and the output
    bias), so that every word keeps its learned row under its new id."""
    at = len(LEGACY_SPECIAL_TOKENS)

    def insert(array: np.ndarray) -> np.ndarray:
        return np.insert(np.asarray(array), [at] * n_added, 0, axis=0)

    saved = dict(saved)
    encoder = dict(saved["encoder"])
    encoder["token_embed"] = {"embedding": insert(encoder["token_embed"]["embedding"])}
    saved["encoder"] = encoder
    if "bias" in saved:
        saved["bias"] = insert(saved["bias"])
    return saved


def restore_into(directory: str | os.PathLike, model: nnx.Module, manifest: dict | None = None) -> None:
    """Loads the saved parameters into `model`, which must have the same structure."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    saved = _read_state(directory, manifest, "params")
    if manifest.get("added_special_rows"):
        saved = _with_added_special_rows(saved, manifest["added_special_rows"])
    _load_state(model, saved, f"parameters in {str(directory)!r} do not fit a {type(model).__name__} with config {manifest['config']}")


def restore_optimizer(directory: str | os.PathLike, optimizer: nnx.Optimizer, manifest: dict) -> None:
    """Loads a training checkpoint's optimizer state into `optimizer`, built for the same model."""
    _load_state(optimizer, _read_state(Path(directory), manifest, "optimizer"), f"the optimizer state in {str(directory)!r} does not fit this run")


def _read_state(directory: Path, manifest: dict, key: str) -> dict:
    """The state saved under `key` ("params" or "optimizer"), checked against its hash."""
    data = _data_file(directory, manifest, key).read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get(f"{key}_sha256"):
        raise CheckpointError(f"{key} in {str(directory)!r} are corrupt (checksum mismatch)")
    try:
        return serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types
        raise CheckpointError(f"{key} in {str(directory)!r} are corrupt: {e}") from None


def _load_state(module, saved: dict, misfit: str) -> None:
    state = nnx.state(module)
    try:
        fits = jax.tree.map(np.shape, saved) == jax.tree.map(np.shape, nnx.to_pure_dict(state))
    except (TypeError, ValueError):  # a corrupt file's keys of mixed types cannot even be sorted
        fits = False
    if not fits:
        raise CheckpointError(misfit)
    # `module` may hold only shapes (nnx.eval_shape): the saved arrays become its values.
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, saved))
    nnx.update(module, state)


def data_fingerprint(*arrays: np.ndarray) -> dict:
    """What a resumed run checks its data against: the rows (token ids, labels), by their hash."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return {"rows": len(arrays[0]), "sha256": digest.hexdigest()[:16]}


def params_fingerprint(model: nnx.Module) -> str:
    """A hash of a model's saved form: two models with it are the same model."""
    return hashlib.sha256(_state_bytes(model)).hexdigest()[:16]


def _training_state_is_whole(training: dict) -> bool:
    """Whether a checkpoint's `training` metadata has the types `checkpointing` saves."""

    def count(value, least: int) -> bool:
        return type(value) is int and value >= least

    history = training["history"]
    return (
        count(training["step"], 0)
        and (training.get("every") is None or count(training["every"], 1))
        and isinstance(training["settings"], dict)
        and isinstance(history, dict)
        and set(history) <= {"loss", "accuracy"}
        and all(isinstance(values, list) and all(type(v) in (int, float) for v in values) for values in history.values())
    )


class TrainingCheckpoints:
    """The intermediate checkpoints of one training run, in `directory`: a model
    directory of their own (the model as `save` writes it, its tokenizer, and
    the optimizer's state), whose metadata says where training stands: the step
    reached, the losses so far and the settings of the run.

    Each checkpoint replaces the one before as `save` replaces a model (the
    manifest last), so a run killed at any moment leaves the last one whole.
    A run resumes only with the very settings it was started with (the recipe,
    the data as token rows, the model it started from): anything else would not
    end as the uninterrupted run would.
    """

    def __init__(self, directory: str | os.PathLike, kind: str):
        self.directory = Path(directory)
        self.kind = kind

    def exists(self) -> bool:
        return (self.directory / MANIFEST).is_file()

    def _manifest(self) -> dict:
        if not self.exists():
            raise CheckpointError(f"there is no checkpoint to resume from in {str(self.directory)!r}")
        manifest, _, _ = open_checkpoint(self.directory, self.kind)
        training = manifest.get("metadata", {}).get("training")
        if not isinstance(training, dict) or "optimizer" not in manifest or not {"step", "history", "settings"} <= set(training):
            raise CheckpointError(f"{str(self.directory)!r} holds a model, not a training checkpoint to resume from")
        if not _training_state_is_whole(training):
            raise CheckpointError(
                f"{str(self.directory / MANIFEST)!r}: its training state (step, every, history, settings) is not what learnjax saves"
            )
        return manifest

    def tokenizer(self) -> BaseTokenizer:
        """The tokenizer the interrupted run read its data with."""
        return load_tokenizer(self.directory, self._manifest())

    def step(self) -> int | None:
        """The step the last checkpoint reached, or None where there is none (or it is unreadable)."""
        try:
            return int(_read_manifest_or_none(self.directory)["metadata"]["training"]["step"])
        except (TypeError, KeyError, ValueError, OverflowError):  # OverflowError: a step of Infinity
            return None

    def checkpointing(
        self, model: nnx.Module, optimizer: nnx.Optimizer, tokenizer: BaseTokenizer, settings: dict, *, every: int | None, resume: bool
    ) -> Checkpointing:
        """What `learnjax.training.loops.run_calls` needs to save a checkpoint every
        `every` steps and, with `resume`, to continue from the last one: its
        state is loaded into `model` and `optimizer` here, after its settings
        are compared with `settings` (JSON data); the first that differs is named."""
        settings = json.loads(json.dumps(settings))
        start, history = 0, History()
        if resume:
            manifest = self._manifest()
            training = manifest["metadata"]["training"]
            for key in sorted(set(settings) | set(training["settings"])):
                saved, now = training["settings"].get(key), settings.get(key)
                if saved != now:
                    raise CheckpointError(
                        f"cannot resume from {str(self.directory)!r}: it was made with {key}={saved!r}, this run has {key}={now!r}; "
                        "resume with the same settings, or start again without resuming"
                    )
            restore_into(self.directory, model, manifest)
            restore_optimizer(self.directory, optimizer, manifest)
            start, history = training["step"], History(**training["history"])
            every = every or training.get("every")

        def save_checkpoint(step: int, history: History) -> None:
            training = {"step": step, "every": every, "history": {"loss": history.loss, "accuracy": history.accuracy}, "settings": settings}
            save(self.directory, model, tokenizer, self.kind, {"training": training}, optimizer=optimizer)

        return Checkpointing(every, save_checkpoint if every else None, start, history)

    def remove(self) -> None:
        """Deletes the checkpoints (once the finished model is saved)."""
        if self.exists():
            with FileLock(self.directory / LOCK):
                for path in _files_named_by(self.directory, _read_manifest_or_none(self.directory)) | {self.directory / MANIFEST}:
                    path.unlink(missing_ok=True)
        for leftover in (self.directory / LOCK,):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only if nothing else is in it
