"""A saved model as a web page reads it: a JSON manifest and one float32 binary.

The site runs its own trained models in the reader's browser
(`docs/javascripts/learnjax-model.js`). A browser reads neither msgpack nor a
pytree, so `export` writes two files a page fetches:

- `<name>.json`: the kind of model, its configuration, the special tokens, the
  tokenizer's vocabulary (and its kind: whole words or WordPiece pieces), the
  labels of a classifier, the layer norm's epsilon and which GELU the library
  computes, and for each parameter its shape and byte offset in the binary;
- `<name>.bin`: every parameter, little-endian float32, one after the other.

Every saved kind exports: the masked and the next-word foundation, a classifier
and an assistant (a LoRA run is saved with its adapters merged, as plain weights).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from learnjax.files.atomic import write_bytes, write_text
from learnjax.models.transformer import EncoderClassifier, MaskedLanguageModel, NextWordModel, Transformer, TransformerConfig
from learnjax.storage import checkpoints
from learnjax.text.tokenizer import SPECIAL_TOKENS, BaseTokenizer

EXPORT_FORMAT = "learnjax-web-model"
EXPORT_VERSION = 1
# How each saved kind's model is built; a classifier's head has one output per label.
MODEL_BUILDERS = {
    "masked_lm": lambda config, labels: MaskedLanguageModel(config, rngs=nnx.Rngs(0)),
    "next_word_lm": lambda config, labels: NextWordModel(config, rngs=nnx.Rngs(0)),
    "assistant": lambda config, labels: NextWordModel(config, rngs=nnx.Rngs(0)),
    "classifier": lambda config, labels: EncoderClassifier(Transformer(config, rngs=nnx.Rngs(0)), len(labels), rngs=nnx.Rngs(0)),
}


class ExportError(ValueError):
    """A model that cannot be exported, or a folder it cannot be exported to."""


def flat_parameters(model: nnx.Module) -> dict[str, np.ndarray]:
    """Every parameter of `model` as float32, by its dotted path ("encoder.blocks.0.ln1.scale"), in a fixed order."""
    flat = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key in sorted(node, key=str):
                walk(f"{prefix}.{key}" if prefix else str(key), node[key])
        else:
            flat[prefix] = np.asarray(node, dtype=np.float32)

    walk("", nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    return flat


def _layer_norm_epsilon(model: nnx.Module) -> float:
    values = {module.epsilon for _, module in nnx.iter_graph(model) if isinstance(module, nnx.LayerNorm)}
    if len(values) != 1:
        raise ExportError(f"the model's layer norms use epsilons {sorted(values)}; an export records one")
    return float(values.pop())


def _gelu() -> str:
    """The GELU the Transformer computes (`nnx.gelu`'s default): "tanh" (the approximation) or "erf" (exact)."""
    return "tanh" if inspect.signature(nnx.gelu).parameters["approximate"].default else "erf"


def web_model(
    model: nnx.Module, tokenizer: BaseTokenizer, kind: str, *, name: str | None = None, labels: list[str] | None = None
) -> tuple[dict, bytes]:
    """`model` (of a saved `kind`: "masked_lm", "next_word_lm", "classifier" or
    "assistant") as a page reads it: the manifest of `<name>.json` and the bytes
    of `<name>.bin` (`name`: the kind)."""
    if kind not in MODEL_BUILDERS:
        raise ExportError(f"cannot export a {kind!r} model; exportable kinds: {', '.join(MODEL_BUILDERS)}")
    name = name or kind
    if not name or Path(name).name != name or name.startswith("."):
        raise ExportError(f"export name {name!r} must be a plain file name")
    config = checkpoints.model_config(model)
    tensors, chunks, offset = {}, [], 0
    for path, array in flat_parameters(model).items():
        data = array.astype("<f4").tobytes()
        tensors[path] = {"offset": offset, "shape": list(array.shape)}
        chunks.append(data)
        offset += len(data)
    weights = b"".join(chunks)
    manifest = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "kind": kind,
        "config": config.to_dict(),
        "special_tokens": {token: i for i, token in enumerate(SPECIAL_TOKENS)},
        "tokenizer": {"kind": tokenizer.kind, "vocab": list(tokenizer.vocab)},
        "labels": list(labels) if labels else None,
        "layer_norm_epsilon": _layer_norm_epsilon(model),
        "gelu": _gelu(),
        "weights": {
            "file": f"{name}.bin",
            "bytes": len(weights),
            "sha256": hashlib.sha256(weights).hexdigest(),
            "dtype": "float32",
            "byte_order": "little",
        },
        "tensors": tensors,
    }
    return manifest, weights


def write_web_model(manifest: dict, weights: bytes, out: str | os.PathLike) -> Path:
    """Writes a `web_model` into the folder `out` (made if missing); returns the manifest's path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot export to {str(out)!r}: it is a file, not a folder")
    name = Path(manifest["weights"]["file"]).stem
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes(out / f"{name}.bin", weights)
        write_text(out / f"{name}.json", json.dumps(manifest, ensure_ascii=False))  # last: it names the binary
    except OSError as e:
        raise ExportError(f"cannot export to {str(out)!r}: {e.strerror or e}") from None
    return out / f"{name}.json"


def export_model(
    model: nnx.Module, tokenizer: BaseTokenizer, kind: str, out: str | os.PathLike, *, name: str | None = None, labels: list[str] | None = None
) -> Path:
    """Writes `model` and its tokenizer (`web_model`) as `<out>/<name>.json` and
    `<out>/<name>.bin`; returns the manifest's path."""
    return write_web_model(*web_model(model, tokenizer, kind, name=name, labels=labels), out)


def export_directory(model_dir: str | os.PathLike, out: str | os.PathLike, *, name: str | None = None) -> Path:
    """`export_model` of a saved model directory (`learnjax.storage.checkpoints`), of any saved kind."""
    manifest = checkpoints.read_manifest(model_dir)
    kind = manifest["kind"]
    if kind not in MODEL_BUILDERS:
        raise ExportError(f"{str(model_dir)!r} holds a {kind!r} model; exportable kinds: {', '.join(MODEL_BUILDERS)}")
    manifest, tokenizer, config = checkpoints.open_checkpoint(model_dir, kind)
    labels = None
    if kind == "classifier":
        with checkpoints.reading_metadata(model_dir):
            labels = [str(label) for label in manifest["metadata"]["labels"]]
        if len(labels) < 2:
            raise ExportError(f"{str(model_dir)!r} names labels {labels}; a classifier needs at least 2")
    model = nnx.eval_shape(lambda: MODEL_BUILDERS[kind](config, labels))  # shapes only: the saved values fill it
    checkpoints.restore_into(model_dir, model, manifest)
    return export_model(model, tokenizer, kind, out, name=name, labels=labels)


def read_export(manifest_path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """An export read back: its manifest and each parameter as a float32 array (the binary checked against its hash)."""
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != EXPORT_FORMAT or manifest.get("version") != EXPORT_VERSION:
            raise ExportError(f"{str(manifest_path)!r} is not a learnjax web model (version {EXPORT_VERSION})")
        weights = (manifest_path.parent / Path(manifest["weights"]["file"]).name).read_bytes()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ExportError(f"cannot read the export {str(manifest_path)!r}: {e}") from None
    if hashlib.sha256(weights).hexdigest() != manifest["weights"]["sha256"]:
        raise ExportError(f"the weights of {str(manifest_path)!r} are corrupt (checksum mismatch)")
    TransformerConfig.from_dict(manifest["config"])
    arrays = {
        path: np.frombuffer(weights, "<f4", count=int(np.prod(t["shape"], dtype=np.int64)), offset=t["offset"]).reshape(t["shape"])
        for path, t in manifest["tensors"].items()
    }
    return manifest, arrays


def model_from_export(manifest: dict, arrays: dict[str, np.ndarray]) -> nnx.Module:
    """The library's model of an export (`read_export`): the same parameters, for JAX to run."""
    labels = manifest["labels"]
    config = TransformerConfig.from_dict(manifest["config"])
    model = nnx.eval_shape(lambda: MODEL_BUILDERS[manifest["kind"]](config, labels))  # shapes only: the arrays fill it
    nested: dict = {}
    for path, array in arrays.items():
        *parents, leaf = [int(key) if key.isdigit() else key for key in path.split(".")]
        node = nested
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = jnp.asarray(array)
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, nested)
    nnx.update(model, state)
    return model
