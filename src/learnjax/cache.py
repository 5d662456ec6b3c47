"""One foundation model, reused: a disk cache keyed by the recipe and the code.

Pages, notebooks, tests and the CLI all call `foundation_model()`; the first call
pre-trains and saves, later calls (in any process) load. The key hashes the
recipe and the source of every module that shapes training, so changing either
trains a new model instead of reusing a stale one.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import os
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from learnjax.checkpoints import MANIFEST
from learnjax.pretraining import Foundation, PretrainRecipe, pretrain

# The modules whose source decides what pre-training produces.
FOUNDATION_MODULES = (
    "world", "messages", "corpus", "tokenizer", "masking", "model", "steps",
    "training", "pretraining", "checkpoints",
)


def cache_root() -> Path:
    """`$LEARNJAX_CACHE`, else `~/.cache/learnjax`."""
    root = os.environ.get("LEARNJAX_CACHE") or Path.home() / ".cache" / "learnjax"
    return Path(root)


def use_compilation_cache(directory: str | os.PathLike | None = None) -> Path:
    """Keeps XLA's compiled programs on disk (default: `cache_root() / "xla"`), so
    that a new process running the same steps loads them instead of compiling.

    The `learnjax` command turns it on: its second run of a command starts
    seconds sooner. JAX keys each entry by the program, the flags and its own
    version, so a stale entry is never used.
    """
    import jax

    path = Path(directory) if directory else cache_root() / "xla"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # the steps here compile in seconds, not minutes
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def _code_only(source: str) -> str:
    """The source's syntax tree without docstrings (of modules, classes, functions
    and attributes): comments and documentation can change without invalidating
    what the cache holds."""
    tree = ast.parse(textwrap.dedent(source))
    is_text = lambda statement: isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and any(is_text(statement) for statement in body):
            node.body = [statement for statement in body if not is_text(statement)] or [ast.Pass()]
    return ast.dump(tree)


@functools.lru_cache(maxsize=256)
def _module_code(path: Path, modified_ns: int) -> str:
    """`_code_only` of a source file, parsed once per version of the file."""
    return _code_only(path.read_text(encoding="utf-8"))


def code_version(modules: tuple[str, ...] = FOUNDATION_MODULES, extra_source: str = "") -> str:
    """A hash of the code (not the docstrings) of the named learnjax modules and of `extra_source`."""
    package = Path(__file__).parent
    digest = hashlib.sha256(_code_only(extra_source).encode())
    for name in modules:
        path = package / f"{name}.py"
        digest.update(name.encode() + _module_code(path, path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def cache_key(kind: str, params: dict[str, Any], code: str) -> str:
    text = json.dumps({"kind": kind, "params": params, "code": code}, sort_keys=True)
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


_computing = threading.local()  # .held: this thread holds the computing lock


@contextlib.contextmanager
def _one_computation_at_a_time() -> Iterator[None]:
    """Holds the cache's machine-wide computing lock, so that processes sharing
    the cache (test workers, a site build) compute one entry at a time: each
    experiment then runs at a quiet machine's speed instead of several slowing
    each other, and the Performance page is not measured beside another one.
    Re-entrant within a thread (an experiment may need the foundation model);
    always taken before an entry's own lock, so two processes cannot deadlock."""
    if getattr(_computing, "held", False):
        yield
        return
    with _locked(cache_root() / "computing"):
        _computing.held = True
        try:
            yield
        finally:
            _computing.held = False


@contextlib.contextmanager
def _announced(what: str, path: Path) -> Iterator[None]:
    """Tells a person at a terminal what a first run is busy with, and for how
    long it was; silent where stderr is a log or a pipe (tests, CI)."""
    tell = sys.stderr.isatty()
    if tell:
        print(f"learnjax: {what} (once: later runs read it from {path})", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    if tell:
        print(f"learnjax: {what}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def _read_or_compute(path: Path, saved: Path, read: Callable[[], Any], compute_and_save: Callable[[], None], what: str) -> Any:
    """`read()` of the cache entry at `path`, first made by `compute_and_save()`
    unless `saved` exists. The first check takes the entry's lock alone, so that
    reading a cached entry never waits behind another process's computation;
    computing takes the machine-wide computing lock, then checks again, since
    another process may have computed the entry meanwhile."""
    with _locked(path):
        if saved.exists():
            return read()
    with _one_computation_at_a_time(), _locked(path):
        if not saved.exists():
            with _announced(what, path):
                compute_and_save()
        return read()


_loaded: dict[str, Foundation] = {}


def foundation_model(recipe: PretrainRecipe = PretrainRecipe(), *, progress: bool = True) -> Foundation:
    """The foundation model of `recipe`: loaded from the cache, or pre-trained once and saved
    (with a progress bar when stderr is a terminal and `progress` is on)."""
    key = cache_key("foundation", recipe.to_dict(), code_version())
    if key in _loaded:
        return _loaded[key]
    path = cache_root() / key
    _loaded[key] = _read_or_compute(
        path, path / MANIFEST, lambda: Foundation.load(path),
        lambda: pretrain(recipe, progress=progress).save(path), "pre-training the foundation model",
    )
    return _loaded[key]


def cached_json(kind: str, params: dict[str, Any], compute: Callable[..., Any], *, modules: tuple[str, ...] = (),
                extra_sources: tuple[str, ...] = ()) -> Any:
    """`compute(**params)`, stored as JSON under a key of `kind`, `params` and the code:
    the source of `compute`, of the foundation's modules, of `modules` and the
    Python source texts `extra_sources` (code outside the library that `compute` runs)."""
    code = code_version(FOUNDATION_MODULES + modules, "\n".join((textwrap.dedent(inspect.getsource(compute)), *extra_sources)))
    path = cache_root() / f"{cache_key(kind, params, code)}.json"

    def compute_and_save() -> None:
        result = compute(**params)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    return _read_or_compute(path, path, lambda: json.loads(path.read_text(encoding="utf-8")), compute_and_save,
                            f"measuring the {kind} experiment")
