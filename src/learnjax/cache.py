"""One foundation model, reused: a disk cache keyed by the recipe and the code.

Pages, notebooks, tests and the CLI all call `foundation_model()`; the first call
pre-trains and saves, later calls (in any process) load. The key hashes the
recipe and the source of every module that shapes training, so changing either
trains a new model instead of reusing a stale one.

Each entry has a record beside it (`<key>.record.json`: what made it, and the
code it was made with), so that `list_entries` can tell an entry this code still
reads from one only an older version read, and `prune` removes those.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

if TYPE_CHECKING:  # imported where used: the `learnjax` command's cache commands need no JAX
    from learnjax.pretraining import Foundation, PretrainRecipe

PACKAGE = Path(__file__).parent

# The modules whose source decides what pre-training produces.
FOUNDATION_MODULES = (
    "world", "messages", "corpus", "facts", "instructions", "tokenizer", "masking", "model", "steps",
    "training", "pretraining", "checkpoints", "generation",
)


def cache_root() -> Path:
    """`$LEARNJAX_CACHE`, else `~/.cache/learnjax`."""
    root = os.environ.get("LEARNJAX_CACHE") or Path.home() / ".cache" / "learnjax"
    return Path(root)


def _writable(directory: Path) -> bool:
    """Whether files can be made in `directory` (made if missing). Tried, not
    asked: `os.access` says yes to root on a read-only mount's folder."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def use_compilation_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Keeps XLA's compiled programs on disk (default: `cache_root() / "xla"`), so
    that a new process running the same steps loads them instead of compiling.
    Returns the folder, or None (and leaves caching off) where it cannot be
    written: JAX would warn at every program it fails to store.

    The `learnjax` command turns it on: its second run of a command starts
    seconds sooner. JAX keys each entry by the program, the flags and its own
    version, so a stale entry is never used.
    """
    path = Path(directory) if directory else cache_root() / "xla"
    if not _writable(path):
        return None
    import jax

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
    digest = hashlib.sha256(_code_only(extra_source).encode())
    for name in modules:
        path = PACKAGE / f"{name}.py"
        digest.update(name.encode() + _module_code(path, path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def cache_key(kind: str, params: dict[str, Any], code: str) -> str:
    text = json.dumps({"kind": kind, "params": params, "code": code}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _lock(path: Path, timeout: float = -1) -> FileLock:
    """The exclusive lock of the entry at `path`, so two processes never compute
    the same entry. Its file stays when released: deleting a lock file others
    wait on would let two of them hold it."""
    return FileLock(path.with_name(path.name + ".lock"), timeout=timeout)


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
    with _lock(cache_root() / "computing"):
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


# --- What an entry is: its record -------------------------------------------

RECORD_SUFFIX = ".record.json"


def _record_path(key: str) -> Path:
    return cache_root() / f"{key}{RECORD_SUFFIX}"


def _entry_path(key: str, kind: str) -> Path:
    """Where an entry's data lives: a model directory, or a JSON file."""
    return cache_root() / (key if kind == "foundation" else f"{key}.json")


def _source_of(compute: Callable) -> dict | None:
    """Where `compute`'s source lives: a file (relative to the package when inside
    it, so that a reinstalled learnjax finds its own) and the function's name."""
    function = inspect.unwrap(compute)  # a decorated function's own source, as `inspect.getsource` finds it
    try:
        file = Path(inspect.getsourcefile(function)).resolve()
    except (TypeError, OSError):
        return None
    inside = file.is_relative_to(PACKAGE.resolve())
    return {"file": file.relative_to(PACKAGE.resolve()).as_posix() if inside else str(file), "in_package": inside,
            "function": function.__qualname__}


def _extra_source(function_source: str, extra_files: tuple[str, ...]) -> str:
    """The source text besides the modules that keys an entry: its function's,
    and that of the files it runs from outside the library."""
    return "\n".join((function_source, *(Path(f).read_text(encoding="utf-8") for f in extra_files)))


def _write_record(key: str, kind: str, params: dict, code: str, modules: tuple[str, ...], source: dict | None,
                  extra_files: tuple[str, ...] = (), seconds: float | None = None) -> None:
    """Writes the entry's record; best effort, since an entry is read without one
    (in a cache that cannot be written, or one made before records existed).
    `seconds`: how long computing the entry took (`benchmarks/cold_build.py` reads it)."""
    record = {"kind": kind, "params": params, "code": code, "modules": list(modules), "source": source,
              "extra_files": list(extra_files), "seconds": seconds}
    path = _record_path(key)
    with contextlib.suppress(OSError):
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
        os.replace(tmp, path)


def _function_source(file: Path, qualname: str) -> str | None:
    """The source of the function `qualname` in `file`, as `inspect.getsource`
    gives it (decorators included), found by parsing: nothing is imported or run."""
    try:
        text = file.read_text(encoding="utf-8")
        nodes = ast.parse(text).body
    except (OSError, SyntaxError, ValueError):
        return None
    node = None
    for part in qualname.split("."):
        node = next((n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
        nodes = node.body
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return "\n".join(text.splitlines()[first - 1 : node.end_lineno])


def _current_code(record: dict) -> str | None:
    """The code part of the key this installation computes for the entry's
    recipe, or None where its computation is gone (file, function or module)."""
    modules = tuple(record.get("modules", ()))
    source = record.get("source")
    extra = ""
    if source:
        file = PACKAGE / source["file"] if source.get("in_package") else Path(source["file"])
        extra = _function_source(file, source["function"])
        if extra is None:
            return None
    try:
        return code_version(FOUNDATION_MODULES + modules, _extra_source(textwrap.dedent(extra), tuple(record.get("extra_files", ()))))
    except OSError:
        return None


# --- Reading, computing -------------------------------------------------------

_used = threading.local()  # .entries: a list while `entries_used` collects


@contextlib.contextmanager
def entries_used() -> Iterator[list[dict]]:
    """Collects the cache entries read or computed inside the block, each as
    {"entry": key, "cached": whether it was read, not computed}; an entry
    needed by another's computation comes before it."""
    outer, _used.entries = getattr(_used, "entries", None), []
    try:
        yield _used.entries
    finally:
        _used.entries = outer


def _note_use(key: str, cached: bool) -> None:
    entries = getattr(_used, "entries", None)
    if entries is not None:
        entries.append({"entry": key, "cached": cached})


def _read_or_compute(path: Path, saved: Path, read: Callable[[], Any], compute_and_save: Callable[[], None], what: str,
                     record: Callable[[], None]) -> Any:
    """`read()` of the cache entry at `path`, first made by `compute_and_save()`
    unless `saved` exists; `record()` writes its record. The first check takes
    the entry's lock alone, so that reading a cached entry never waits behind
    another process's computation; computing takes the machine-wide computing
    lock, then checks again, since another process may have computed the entry
    meanwhile. In a cache that cannot be written (a read-only mount), a saved
    entry is read without its lock: entries are written once, atomically."""
    def cannot_write(error: OSError) -> OSError:
        return OSError(f"the cache folder {str(cache_root())!r} cannot be written ({error.strerror or error}), "
                       f"so {what} is not possible; set LEARNJAX_CACHE to a writable folder")

    key = path.name.removesuffix(".json")
    lock = _lock(path)
    try:
        lock.acquire()
    except OSError as e:
        if not saved.exists():
            raise cannot_write(e) from None
        _note_use(key, cached=True)
        return read()
    try:
        if saved.exists():
            if not _record_path(key).exists():
                record()  # an entry made before records existed
            _note_use(key, cached=True)
            return read()
    finally:
        lock.release()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(_one_computation_at_a_time())
            held.enter_context(_lock(path))
        except OSError as e:
            raise cannot_write(e) from None
        cached = saved.exists()
        if not cached:
            started = time.perf_counter()
            with _announced(what, path):
                compute_and_save()
            record(seconds=time.perf_counter() - started)
        _note_use(key, cached)
        return read()


_loaded: dict[str, Foundation] = {}


def foundation_model(recipe: PretrainRecipe | None = None, *, progress: bool = True) -> Foundation:
    """The foundation model of `recipe` (default: `PretrainRecipe()`): loaded from
    the cache, or pre-trained once and saved (with a progress bar when stderr is
    a terminal and `progress` is on)."""
    from learnjax.checkpoints import MANIFEST
    from learnjax.pretraining import Foundation, PretrainRecipe, pretrain

    recipe = recipe or PretrainRecipe()
    code = code_version()
    key = cache_key("foundation", recipe.to_dict(), code)
    if key in _loaded:
        return _loaded[key]
    path = _entry_path(key, "foundation")
    _loaded[key] = _read_or_compute(
        path, path / MANIFEST, lambda: Foundation.load(path),
        lambda: pretrain(recipe, progress=progress).save(path), "pre-training the foundation model",
        lambda seconds=None: _write_record(key, "foundation", recipe.to_dict(), code, (), None, seconds=seconds),
    )
    return _loaded[key]


def cached_json(kind: str, params: dict[str, Any], compute: Callable[..., Any], *, modules: tuple[str, ...] = (),
                extra_files: tuple[str | os.PathLike, ...] = ()) -> Any:
    """`compute(**params)`, stored as JSON under a key of `kind`, `params` and the code:
    the source of `compute`, of the foundation's modules, of `modules` and of the
    Python files `extra_files` (code outside the library that `compute` runs)."""
    extra_files = tuple(str(Path(f).resolve()) for f in extra_files)
    code = code_version(FOUNDATION_MODULES + modules, _extra_source(textwrap.dedent(inspect.getsource(compute)), extra_files))
    key = cache_key(kind, params, code)
    path = _entry_path(key, kind)

    def compute_and_save() -> None:
        result = compute(**params)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    return _read_or_compute(path, path, lambda: json.loads(path.read_text(encoding="utf-8")), compute_and_save,
                            f"measuring the {kind} experiment",
                            lambda seconds=None: _write_record(key, kind, json.loads(json.dumps(params)), code, modules, _source_of(compute),
                                                               extra_files, seconds=seconds))


# --- Listing and pruning ------------------------------------------------------

XLA = "xla"  # `use_compilation_cache`'s folder: JAX's own entries
_ENTRY_NAME = re.compile(r"(?P<key>(?P<kind>.+)-[0-9a-f]{16})(?P<suffix>\..*)?")


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One entry of the cache folder and the files that make it up.

    `status`: "current" (this code reads it), "stale" (made by other code: never
    read again), "incomplete" (its computation stopped, or is running),
    "unknown" (made before entries recorded their code, or by a computation
    that cannot be found by name), or "compiled" (XLA's compiled programs).
    """

    name: str
    kind: str
    status: str
    bytes: int
    paths: tuple[Path, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "status": self.status, "bytes": self.bytes}


def _size(path: Path) -> int:
    """Bytes under `path`, symbolic links counted as themselves, never followed."""
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())
    return path.lstat().st_size


def _status(key: str, kind: str, files: dict[str, Path]) -> str:
    from learnjax.checkpoints import MANIFEST

    data = files.get("") if kind == "foundation" else files.get(".json")
    complete = data is not None and (kind != "foundation" or (data / MANIFEST).is_file())
    if not complete:
        return "incomplete"
    try:
        record = json.loads(files[RECORD_SUFFIX].read_text(encoding="utf-8")) if RECORD_SUFFIX in files else None
    except (OSError, ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        record = None  # a record of another shape: as if there were none
    if record is None and kind == "foundation":  # a model's manifest holds its recipe: the key follows from it
        try:
            recipe = json.loads((data / MANIFEST).read_text(encoding="utf-8"))["metadata"]["recipe"]
            return "current" if cache_key(kind, recipe, code_version()) == key else "stale"
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return "unknown"
    if record is None:
        return "unknown"
    if not isinstance(record.get("code"), str) or not isinstance(record.get("source") or {}, dict):
        return "unknown"  # a record learnjax did not write
    if kind != "foundation" and "<" in str((record.get("source") or {}).get("function", "<")):
        return "unknown"  # a computation not found by name: a lambda, a nested function, or one without a file
    try:
        return "current" if _current_code(record) == record["code"] else "stale"
    except (KeyError, TypeError, AttributeError, ValueError):
        return "unknown"  # a record learnjax did not write


def list_entries() -> list[CacheEntry]:
    """The entries in `cache_root()`, sorted by name, with their sizes and status.
    Files the cache did not make are not listed (and never removed)."""
    root = cache_root()
    if not root.is_dir():
        return []
    groups: dict[str, dict[str, Path]] = {}
    entries = []
    for path in sorted(root.iterdir()):
        if path.name == XLA and path.is_dir():
            entries.append(CacheEntry(XLA, "compiled programs", "compiled", _size(path), (path,)))
        elif match := _ENTRY_NAME.fullmatch(path.name):
            groups.setdefault(match["key"], {})[match["suffix"] or ""] = path
    for key, files in groups.items():
        data = {suffix: path for suffix, path in files.items() if not suffix.endswith(".lock")}
        if not data:
            continue  # a lock file alone: nothing stored
        kind = _ENTRY_NAME.fullmatch(key)["kind"]
        entries.append(CacheEntry(key, kind, _status(key, kind, files), sum(_size(p) for p in files.values()), tuple(files.values())))
    return sorted(entries, key=lambda e: e.name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def prune(everything: bool = False) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Removes the entries no code of this version reads (stale ones, and
    incomplete ones whose computation is not running); with `everything`, every
    entry. Returns (removed, kept).

    A current entry is never removed (save with `everything`), nor one of
    unknown version. A stale entry's lock file goes with it (this code never
    takes it); others stay, since a process may be waiting on them.
    """
    removed, kept = [], []
    # With `everything`, no computation may be writing an entry meanwhile.
    with _one_computation_at_a_time() if everything else contextlib.nullcontext():
        for entry in list_entries():
            if not (everything or entry.status in ("stale", "incomplete")):
                kept.append(entry)
                continue
            if entry.name == XLA:
                _remove(entry.paths[0])
                removed.append(entry)
                continue
            try:
                with _lock(_entry_path(entry.name, entry.kind), timeout=-1 if everything else 0):
                    for path in entry.paths:
                        if entry.status == "stale" or not path.name.endswith(".lock"):
                            _remove(path)
            except Timeout:  # being computed right now
                kept.append(entry)
                continue
            removed.append(entry)
    return removed, kept
