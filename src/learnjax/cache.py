"""One foundation model, reused: a disk cache keyed by the recipe and the code.

Pages, notebooks, tests and the CLI all call `foundation_model()`; the first call
pre-trains and saves, later calls (in any process) load. The key hashes the
recipe and the source of every module that shapes training, so changing either
trains a new model instead of reusing a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from learnjax.checkpoints import MANIFEST
from learnjax.pretraining import Foundation, PretrainRecipe, pretrain

# The modules whose source decides what a training run produces.
_TRAINING_MODULES = (
    "world", "messages", "corpus", "tokenizer", "masking", "model", "steps",
    "training", "pretraining", "checkpoints", "supervised", "finetuning", "experiments",
)


def cache_root() -> Path:
    """`$LEARNJAX_CACHE`, else `~/.cache/learnjax`."""
    root = os.environ.get("LEARNJAX_CACHE") or Path.home() / ".cache" / "learnjax"
    return Path(root)


def code_version() -> str:
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _TRAINING_MODULES:
        path = package / f"{name}.py"
        if path.exists():
            digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(kind: str, params: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, "params": params, "code": code_version()}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock, so two processes never compute the same entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_loaded: dict[str, Foundation] = {}


def foundation_model(recipe: PretrainRecipe = PretrainRecipe(), *, progress: bool = False) -> Foundation:
    """The foundation model of `recipe`: loaded from the cache, or pre-trained once and saved."""
    key = cache_key("foundation", recipe.to_dict())
    if key in _loaded:
        return _loaded[key]
    path = cache_root() / key
    with _locked(path):
        if not (path / MANIFEST).exists():
            pretrain(recipe, progress=progress).save(path)
        _loaded[key] = Foundation.load(path)
    return _loaded[key]


def cached_json(kind: str, params: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """The result of `compute()`, stored as JSON under a key of `kind`, `params` and the code."""
    path = cache_root() / f"{cache_key(kind, params)}.json"
    with _locked(path):
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        result = compute()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    return json.loads(path.read_text(encoding="utf-8"))
