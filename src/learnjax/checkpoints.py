"""Saving and loading models: a directory with a manifest, a tokenizer and parameters.

Why not orbax: these models are a few MB, saved and loaded synchronously by a
CLI and by tests. One msgpack file written with `flax.serialization` is
bit-exact and has no background threads. Atomicity comes from the layout: the
data files carry their content hash in their names and the manifest
(`learnjax.json`) is replaced last with `os.replace`, so a save that is cut off
at any point leaves the previous manifest, and the files it names, intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, serialization

from learnjax.model import EncoderConfig
from learnjax.tokenizer import LEGACY_SPECIAL_TOKENS, Tokenizer

FORMAT_VERSION = 1
MANIFEST = "learnjax.json"


class CheckpointError(ValueError):
    """A model directory that is missing, partial, corrupt or incompatible."""


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_blob(directory: Path, stem: str, suffix: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{digest[:16]}{suffix}"
    if not (directory / name).exists():
        _write_atomic(directory / name, data)
    return name


def save(directory: str | os.PathLike, model: nnx.Module, tokenizer: Tokenizer, kind: str, metadata: dict[str, Any] | None = None) -> Path:
    """Saves `model` (its config, every nnx state variable) and `tokenizer` to `directory`.

    `kind` names the model class ("masked_lm" or "classifier"); `metadata` is
    stored as it is (JSON) for the caller, e.g. label names or the recipe.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = jax.device_get(nnx.to_pure_dict(nnx.state(model)))
    params_name = _write_blob(directory, "params", ".msgpack", serialization.msgpack_serialize(state))
    tokenizer_name = _write_blob(directory, "tokenizer", ".json", tokenizer.to_json().encode("utf-8"))
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": model_config(model).to_dict(),
        "params": params_name,
        "params_sha256": hashlib.sha256((directory / params_name).read_bytes()).hexdigest(),
        "tokenizer": tokenizer_name,
        "vocab_size": len(tokenizer),
        "metadata": metadata or {},
    }
    old = _read_manifest_or_none(directory)
    _write_atomic(directory / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    if old:  # the old files are unreferenced only now that the new manifest is in place
        for name in (old.get("params"), old.get("tokenizer")):
            if name and name not in (params_name, tokenizer_name):
                (directory / name).unlink(missing_ok=True)
    return directory


def model_config(model: nnx.Module) -> EncoderConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, EncoderConfig):
        raise CheckpointError(f"{type(model).__name__} has no Transformer configuration; only Transformer models are saved")
    return config


def _read_manifest_or_none(directory: Path) -> dict | None:
    try:
        return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
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
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{str(path)!r} is corrupt: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise CheckpointError(f"{str(path)!r} has format version {version!r}; this learnjax reads version {FORMAT_VERSION}")
    for key in ("kind", "config", "params", "params_sha256", "tokenizer", "vocab_size"):
        if key not in manifest:
            raise CheckpointError(f"{str(path)!r} is incomplete: no {key!r} entry")
    for key in ("params", "tokenizer"):
        if not (directory / manifest[key]).exists():
            raise CheckpointError(f"{str(directory)!r} is partial: {manifest[key]!r} is missing")
    return manifest


def open_checkpoint(directory: str | os.PathLike, kind: str | tuple[str, ...]) -> tuple[dict, Tokenizer, EncoderConfig]:
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
        config = EncoderConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{str(directory)!r} has an incompatible configuration: {e}") from None
    if tokenizer.ids_shifted_by:  # saved with a format-1 tokenizer: see `_with_added_special_rows`
        config = EncoderConfig.from_dict({**manifest["config"], "vocab_size": config.vocab_size + tokenizer.ids_shifted_by})
        manifest = {**manifest, "added_special_rows": tokenizer.ids_shifted_by}
    if config.vocab_size != len(tokenizer):
        raise CheckpointError(f"{str(directory)!r}: model vocabulary {config.vocab_size} != tokenizer {len(tokenizer)}")
    return manifest, tokenizer, config


def load_tokenizer(directory: str | os.PathLike, manifest: dict | None = None) -> Tokenizer:
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    try:
        tokenizer = Tokenizer.from_json((directory / manifest["tokenizer"]).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, KeyError) as e:
        raise CheckpointError(f"tokenizer in {str(directory)!r} is corrupt: {e}") from None
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
    data = (directory / manifest["params"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["params_sha256"]:
        raise CheckpointError(f"parameters in {str(directory)!r} are corrupt (checksum mismatch)")
    try:
        saved = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types
        raise CheckpointError(f"parameters in {str(directory)!r} are corrupt: {e}") from None
    if manifest.get("added_special_rows"):
        saved = _with_added_special_rows(saved, manifest["added_special_rows"])
    expected = nnx.to_pure_dict(nnx.state(model))
    saved_shapes = jax.tree.map(np.shape, saved)
    expected_shapes = jax.tree.map(np.shape, expected)
    if saved_shapes != expected_shapes:
        raise CheckpointError(f"parameters in {str(directory)!r} do not fit a {type(model).__name__} with config {manifest['config']}")
    # `model` may hold only shapes (nnx.eval_shape): the saved arrays become its values.
    nnx.replace_by_pure_dict(state := nnx.state(model), jax.tree.map(jnp.asarray, saved))
    nnx.update(model, state)
