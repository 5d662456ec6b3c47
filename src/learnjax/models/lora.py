"""LoRA: fine-tuning a few low-rank adapters instead of every weight.

A LoRA layer keeps a pre-trained `nnx.Linear` frozen and learns a correction
of rank r beside it: y = W x + (alpha / r) B A x, with A (in, r) and B (r, out)
small, and B starting at zero so that training starts from the pre-trained
model exactly. Flax's `nnx.LoRA` computes W x + B A x with no scale; the scale
(Hu et al., 2021) keeps the size of a step independent of the rank, so it is
added here. The adapters are `nnx.LoRAParam` variables: an optimizer built with
`wrt=nnx.LoRAParam` updates them alone, and `steps` differentiates only what
the optimizer updates. (`nnx.LoRAParam` is a subclass of `nnx.Param`: a filter
of `nnx.Param` would train the frozen weights too.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, serialization

from learnjax.files.atomic import write_bytes, write_text

TARGETS = ("qkv", "proj", "ff1", "ff2")  # the attention and MLP projections of each block


# --8<-- [start:scaled_lora]
class ScaledLoRA(nnx.LoRA):
    """`nnx.LoRA` around a frozen `base` layer, with the paper's alpha / rank scale."""

    def __init__(self, base: nnx.Linear, rank: int, alpha: float, *, rngs: nnx.Rngs):
        super().__init__(base.in_features, rank, base.out_features,
                         base_module=base, rngs=rngs)
        self.scale = alpha / rank

    def __call__(self, x: jax.Array) -> jax.Array:
        return (self.base_module(x)
                + (x @ self.lora_a[...] @ self.lora_b[...]) * self.scale)
# --8<-- [end:scaled_lora]


# --8<-- [start:add_lora]
def transformer_of(model: nnx.Module) -> nnx.Module:
    """The Transformer inside a language model or classifier."""
    return model.decoder if hasattr(model, "decoder") else model.encoder


def adapted_layers(model: nnx.Module):
    """(owner, name) of each layer LoRA adapts: attention and MLP projections."""
    for block in transformer_of(model).blocks:
        yield block.attn, "qkv"
        yield block.attn, "proj"
        yield block, "ff1"
        yield block, "ff2"


def add_lora(model: nnx.Module, rank: int = 8, alpha: float = 16.0,
             seed: int = 0) -> nnx.Module:
    """Wraps the attention and MLP projections of every block in LoRA adapters,
    in place; returns `model`. Train it with
    `nnx.Optimizer(model, tx, wrt=nnx.LoRAParam)`."""
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be a positive int, got {rank!r}")
    rngs = nnx.Rngs(seed)
    for owner, name in adapted_layers(model):
        setattr(owner, name, ScaledLoRA(getattr(owner, name), rank, alpha, rngs=rngs))
    return model
# --8<-- [end:add_lora]


def merge_lora(model: nnx.Module) -> nnx.Module:
    """Folds every adapter into its layer's weights, in place (W + scale A B):
    the same outputs, at the cost of the plain model. Returns `model`."""
    for owner, name in adapted_layers(model):
        layer = getattr(owner, name)
        if isinstance(layer, ScaledLoRA):
            base = layer.base_module
            base.kernel[...] = base.kernel[...] + layer.scale * (layer.lora_a[...] @ layer.lora_b[...])
            setattr(owner, name, base)
    return model


def trainable_share(model: nnx.Module) -> dict:
    """How many parameters the adapters hold, against the whole model."""
    count = lambda state: sum(x.size for x in jax.tree.leaves(state))
    adapters, everything = count(nnx.state(model, nnx.LoRAParam)), count(nnx.state(model, nnx.Param))
    return {"adapters": adapters, "model": everything - adapters, "share": adapters / (everything - adapters)}


ADAPTER_MANIFEST = "adapter.json"


def _fingerprint(model: nnx.Module) -> str:
    """A hash of the frozen weights an adapter was trained on."""
    digest = hashlib.sha256()
    state = nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    for leaf in jax.tree.leaves(state):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()[:16]


def save_adapter(directory: str | os.PathLike, model: nnx.Module, rank: int, alpha: float) -> Path:
    """Saves the adapters alone (a few percent of the model), with the fingerprint
    of the foundation they belong to."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = serialization.msgpack_serialize(jax.device_get(nnx.to_pure_dict(nnx.state(model, nnx.LoRAParam))))
    name = f"adapter-{hashlib.sha256(data).hexdigest()[:16]}.msgpack"
    write_bytes(directory / name, data)
    manifest = {"kind": "lora_adapter", "params": name, "rank": rank, "alpha": alpha, "foundation": _fingerprint(model)}
    write_text(directory / ADAPTER_MANIFEST, json.dumps(manifest, indent=2))  # last: it names the file above
    return directory / name


def load_adapter(directory: str | os.PathLike, foundation_model: nnx.Module) -> nnx.Module:
    """A copy of `foundation_model` with the saved adapters in place: refused if
    they were trained on another foundation. An adapter directory is untrusted
    input: anything wrong in it is a one-line ValueError naming the file."""
    directory = Path(directory)
    manifest = _read_adapter_manifest(directory / ADAPTER_MANIFEST, transformer_of(foundation_model).config.d_model)
    model = add_lora(nnx.clone(foundation_model), manifest["rank"], manifest["alpha"])
    if _fingerprint(model) != manifest["foundation"]:
        raise ValueError(f"the adapter in {str(directory)!r} was trained on another foundation model")
    path = directory / manifest["params"]
    state = nnx.state(model, nnx.LoRAParam)
    try:
        saved = serialization.msgpack_restore(path.read_bytes())
        if jax.tree.map(np.shape, saved) != jax.tree.map(np.shape, nnx.to_pure_dict(state)):
            raise ValueError(f"its adapters do not fit this foundation with rank {manifest['rank']}")
    except OSError as e:
        raise OSError(f"{str(path)!r} cannot be read: {e.strerror or e}") from None
    except Exception as e:  # msgpack raises several unrelated types
        raise ValueError(f"{str(path)!r} is corrupt: {e}") from None
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, saved))
    nnx.update(model, state)
    return model


_ADAPTER_FILE = re.compile(r"adapter-[0-9a-f]{16}\.msgpack")


def _read_adapter_manifest(path: Path, width: int) -> dict:
    """`adapter.json`, checked: a kind, a plain file name of the form `save_adapter`
    writes, a rank from 1 to the model's width (a larger one adds nothing, and
    would only fill memory), a finite alpha and a foundation fingerprint."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise OSError(f"{str(path)!r} cannot be read: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, nested too deep
        raise ValueError(f"{str(path)!r} is corrupt: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != "lora_adapter":
        raise ValueError(f"{str(path)!r} is not a learnjax adapter manifest")
    rank, alpha = manifest.get("rank"), manifest.get("alpha")
    problems = [
        (not isinstance(manifest.get("params"), str) or not _ADAPTER_FILE.fullmatch(manifest["params"]), "params", "a file name adapter-<16 hex digits>.msgpack"),
        (type(rank) is not int or not 1 <= rank <= width, "rank", f"an int from 1 to {width}"),
        (type(alpha) not in (int, float) or not math.isfinite(alpha), "alpha", "a finite number"),
        (not isinstance(manifest.get("foundation"), str), "foundation", "a fingerprint"),
    ]
    for wrong, key, expected in problems:
        if wrong:
            raise ValueError(f"{str(path)!r} has {key} {json.dumps(manifest.get(key))[:60]}; expected {expected}")
    return manifest
