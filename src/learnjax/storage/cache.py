"""One foundation model, reused: a disk cache keyed by the recipe and the code.

Pages, notebooks, tests and the CLI all call `foundation_model()`; the first call
pre-trains and saves, later calls (in any process) load. The same holds for
each measured experiment (`cached_json`).

An entry's key hashes its recipe and exactly the code its computation runs,
found from the package's import graph (`code_graph`): the definitions it uses
in its own file and every package module those import, transitively. The
entries it reads (an experiment reads the foundation model) count by their
content, not their code: each entry's record (`<key>.record.json`) keeps what
it read, with a hash of what that held. So a change to the training loop
trains the foundation again, and when the model comes out the same (training
is deterministic) the experiments that read it stay valid: early cutoff.

The records also let `list_entries` tell an entry this code still reads from
one only an older version read, and `prune` remove those.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.util
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from learnjax.files.atomic import write_text
from learnjax.storage.code_graph import definition_closure, files_held, import_graph, imports_of, module_of_file, package_versions

PACKAGE = Path(__file__).parent.parent
# The cache's own module: what it serves an entry is keyed by content, so the
# code that computes the entries it serves is not part of the reader's code.
MACHINERY = (__name__,)


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
    import jax  # here only: the cache commands of `learnjax` (and its --help) run without JAX

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # the steps here compile in seconds, not minutes
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


# Code keys are worked out one thread at a time (threads: `in_threads`):
# Python 3.11's compiler keeps the syntax tree's recursion depth for the whole
# interpreter, so two threads parsing at once can fail with "AST constructor
# recursion depth mismatch".
_parsing = threading.RLock()


def code_only(code: str | list[ast.stmt]) -> str:
    """The syntax tree of `code` (source, or parsed statements, whose docstrings
    are removed in place) without docstrings (of modules, classes, functions and
    attributes): comments and documentation can change without invalidating what
    the cache holds."""
    tree = ast.parse(textwrap.dedent(code)) if isinstance(code, str) else ast.Module(body=code, type_ignores=[])
    is_text = lambda statement: (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
    )
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and any(is_text(statement) for statement in body):
            node.body = [statement for statement in body if not is_text(statement)] or [ast.Pass()]
    return ast.dump(tree)


@functools.lru_cache(maxsize=256)
def _module_code(path: Path, modified_ns: int) -> str:
    """`code_only` of a source file, parsed once per version of the file."""
    return code_only(path.read_text(encoding="utf-8"))


def code_version(modules: Iterable[str], extra_source: str = "") -> str:
    """A hash of the code (not the docstrings) of the named package modules
    (dotted names, as `code_graph` gives them) and of `extra_source`."""
    with _parsing:
        files = import_graph(PACKAGE).files
        digest = hashlib.sha256(code_only(extra_source).encode())
        for name in sorted(modules):
            path = files[name]
            digest.update(name.encode() + _module_code(path, path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Computation:
    """The code a computation runs, found without running it: the definitions of
    its own file that it uses, the package modules those import (transitively,
    the cache's own module excepted: entries read count by content), and the
    files outside the package named as running with it."""

    own_code: str
    modules: frozenset[str]
    extra_files: tuple[str, ...] = ()

    def code(self) -> str:
        extra = "\n".join(Path(f).read_text(encoding="utf-8") for f in self.extra_files)
        return hashlib.sha256((self.own_code + code_version(self.modules, extra)).encode()).hexdigest()[:16]


def computation(source: dict, extra_files: tuple[str, ...] = ()) -> Computation | None:
    """The `Computation` of the function that `source` (`source_of`) names, read
    from its file; None where the file or the function is gone. Worked out once
    per version of the files it reads (a build asks for each entry's many times)."""
    file = PACKAGE / source["file"] if source.get("in_package") else Path(source["file"])
    try:
        version = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in (file, *map(Path, extra_files)))
    except OSError:
        return None
    with _parsing:
        return _computation(PACKAGE, file, source["function"], tuple(extra_files), version, package_versions(PACKAGE))


@functools.lru_cache(maxsize=1024)
def _computation(
    package: Path, file: Path, function: str, extra_files: tuple[str, ...], version: tuple, package_version: tuple
) -> Computation | None:
    module = module_of_file(file, package)
    try:
        text = file.read_text(encoding="utf-8")
        if "<" in function:  # a nested function or a lambda: its whole module counts
            statements = ast.parse(text).body
        else:
            statements = definition_closure(text, function.split(".")[0])
        imports = set(imports_of(statements, package, module))
        for extra in extra_files:
            imports |= imports_of(Path(extra).read_text(encoding="utf-8"), package)
    except (OSError, SyntaxError, ValueError):
        return None
    if not statements or all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in statements):
        return None
    # Its own module counts whole only where what it imports imports it back.
    modules = import_graph(package).closure(imports, stop_at=MACHINERY)
    return Computation(code_only(statements), modules, tuple(extra_files))


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


# The kinds of entry that are model directories: foundation models, and the
# models tuned from them (`cached_model`); every other kind is a JSON file.
MODEL_KINDS = ("foundation", "tuned")


def _entry_path(key: str, kind: str) -> Path:
    """Where an entry's data lives: a model directory, or a JSON file."""
    return cache_root() / (key if kind in MODEL_KINDS else f"{key}.json")


def source_of(compute: Callable) -> dict | None:
    """Where `compute`'s source lives: a file (relative to the package when inside
    it, so that a reinstalled learnjax finds its own) and the function's name."""
    function = inspect.unwrap(compute)  # a decorated function's own source, as `inspect.getsource` finds it
    try:
        file = Path(inspect.getsourcefile(function)).resolve()
    except (TypeError, OSError):
        return None
    inside = file.is_relative_to(PACKAGE.resolve())
    return {"file": file.relative_to(PACKAGE.resolve()).as_posix() if inside else str(file), "in_package": inside, "function": function.__qualname__}


def _write_record(key: str, record: dict) -> None:
    """Writes the entry's record; best effort, since an entry is read without one
    (in a cache that cannot be written, or one made before records existed).

    A record holds `kind`, `params`, `code` (the key's code part), `source` (the
    computation's file and function), `extra_files`, `modules` (the package
    modules its code covers), `seconds` (how long computing it took) and
    `own_seconds` (less the entries computed inside it; `benchmarks/cold_build.py`
    reads it), `reads` (the entries its computation
    read, each with the content it had) and `content` (a hash of its own)."""
    path = _record_path(key)
    with contextlib.suppress(OSError):
        write_text(path, json.dumps(record, indent=1))


def _read_record(key: str) -> dict | None:
    """The entry's record; None where there is none, or where it is not a record
    learnjax wrote (another shape, nested too deep)."""
    try:
        record = json.loads(_record_path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def entry_content(key: str, kind: str) -> str | None:
    """A hash of what the entry holds: a JSON entry's bytes; a model's manifest
    (which names its data files by their hashes), less the wall time it took."""
    path = _saved(key, kind)
    try:
        if kind not in MODEL_KINDS:
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(manifest.get("metadata"), dict):
        manifest["metadata"].pop("seconds", None)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def current_code(record: dict) -> str | None:
    """The code part of the key this installation computes for the entry's
    recipe, or None where its computation is gone (file, function or module)."""
    source = record.get("source")
    if not source:
        return None
    try:
        found = computation(source, tuple(record.get("extra_files", ())))
        return found.code() if found else None
    except (OSError, KeyError):
        return None


def _current_key(record: dict) -> str | None:
    code = current_code(record)
    return None if code is None else cache_key(record["kind"], record["params"], code)


# --- Reads: early cutoff --------------------------------------------------------


def _current_content(read: dict, compute_missing: bool) -> str | None:
    """The content of the entry that a computation which read `read` (an entry,
    with its record) would read now: the current version of that entry, checked
    (`_still_valid`) and, with `compute_missing`, computed where missing.
    None where it cannot be known (without computing it)."""
    record = _read_record(read["entry"])
    key = _current_key(record) if record else None
    if key is None:
        return None
    current = _read_record(key)
    if current is None or not _saved(key, current["kind"]).exists() or _still_valid(current, compute_missing) is not True:
        if not compute_missing or (found := _demand(record)) is None:
            return None
        key = found
        current = _read_record(key) or {}
    return current.get("content") or entry_content(key, current.get("kind", record["kind"]))


def _still_valid(record: dict, compute_missing: bool = True) -> bool | None:
    """Whether every entry the record's computation read holds what it held then
    (True), not (False), or cannot be told without computing one (None). An entry
    that is computed again and comes out the same keeps its readers valid."""
    answer: bool | None = True
    for read in record.get("reads", ()):
        content = _current_content(read, compute_missing)
        if content is None:
            answer = None
        elif content != read["content"]:
            return False
    return answer


def _demand(record: dict) -> str | None:
    """Computes (or reads) the current version of the entry `record` describes,
    by calling its computation again; its key, or None where it cannot be called."""
    if record["kind"] in MODEL_KINDS:
        entry = _function_named(record.get("entry") or {})
        if entry is None:
            return None
        compute = lambda: entry(record["params"])
    else:
        function = _function_named(record.get("source") or {})
        if function is None:
            return None
        compute = lambda: cached_json(record["kind"], record["params"], function, extra_files=tuple(record.get("extra_files", ())))
    with entries_used() as used, entries_read():  # read to check another entry, not by the computation running
        compute()
    return used[-1]["entry"]


def _function_named(source: dict) -> Callable | None:
    """The function `source` names, imported from its module (or its file, outside the package)."""
    if not source or "<" in source.get("function", "<"):
        return None
    try:
        if source["in_package"]:
            module = importlib.import_module(module_of_file(PACKAGE / source["file"], PACKAGE))
        else:
            spec = importlib.util.spec_from_file_location(Path(source["file"]).stem, source["file"])
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return functools.reduce(getattr, source["function"].split("."), module)
    except (ImportError, OSError, AttributeError, SyntaxError):
        return None


# --- Reading, computing -------------------------------------------------------

_timing = threading.local()  # .inner: per computation running in this thread, the seconds of entries computed inside it


@contextlib.contextmanager
def _timed() -> Iterator[dict]:
    """Times a computation: "seconds", all of it, and "own_seconds", less the
    entries computed inside it (an experiment's tuned models), which keep their
    own: each entry's cold cost, counted once."""
    inner = getattr(_timing, "inner", None)
    if inner is None:
        inner = _timing.inner = []
    took: dict = {}
    inner.append(0.0)
    started = time.perf_counter()
    try:
        yield took
    finally:
        seconds = time.perf_counter() - started
        took.update(seconds=seconds, own_seconds=seconds - inner.pop())
        if inner:
            inner[-1] += seconds


_used = threading.local()  # .entries: a list while `entries_used` collects; .reads: the direct reads of the computation running


@contextlib.contextmanager
def entries_used() -> Iterator[list[dict]]:
    """Collects the cache entries read or computed inside the block, each as
    {"entry": key, "cached": whether it was read, not computed, "content": its
    content hash}; an entry needed by another's computation comes before it."""
    outer, _used.entries = getattr(_used, "entries", None), []
    try:
        yield _used.entries
    finally:
        _used.entries = outer


# A file to which this process appends every entry it uses, with its content:
# how a site build learns what its notebooks' kernels (other processes) read.
READS_LOG = "LEARNJAX_READS_LOG"


def _note_use(key: str, kind: str, cached: bool, content: str | None = None) -> None:
    content = content or (_read_record(key) or {}).get("content") or entry_content(key, kind)
    for collected in (getattr(_used, "entries", None), getattr(_used, "reads", None)):
        if collected is not None:
            collected.append({"entry": key, "cached": cached, "content": content})
    if log := os.environ.get(READS_LOG):
        with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps({"entry": key, "content": content}) + "\n")


@contextlib.contextmanager
def entries_read() -> Iterator[list[dict]]:
    """Collects the entries that the code inside the block reads itself, in this
    thread (not those their computations read), each as {"entry": key,
    "content": hash}: what to store beside a result computed from them
    (`still_hold`)."""
    outer, _used.reads = getattr(_used, "reads", None), []
    collected: list[dict] = []
    try:
        yield collected
    finally:
        collected.extend({"entry": r["entry"], "content": r["content"]} for r in _used.reads)
        _used.reads = outer


@contextlib.contextmanager
def _not_a_read() -> Iterator[None]:
    """Inside the block, entries used are not counted as read by the computation
    running (`entries_read`); those that their own computations read still are."""
    outer, _used.reads = getattr(_used, "reads", None), None
    try:
        yield
    finally:
        _used.reads = outer


# How many computations `in_threads` runs at once. One small model's training
# keeps about 1.35 of two cores busy (XLA's work per step is too small to
# spread wider), so two side by side finish sooner: 1.7x for two
# instruction-tuning runs on two cores.
THREADS = 2


def in_threads(function: Callable[[Any], Any], items: Iterable[Any], workers: int = THREADS) -> list:
    """`[function(item) for item in items]`, `workers` at a time in threads of this
    process (XLA runs without Python's lock), in the order of `items`.

    Each thread acts for the calling one in the cache: where the caller holds
    the computing lock (an experiment training its models), the entries the
    threads compute are part of that computation instead of waiting for it; the
    entries they use or read are collected with the caller's; and the seconds
    they spend computing entries are not counted as the caller's own (at most
    the wall time of the call, since the threads overlap)."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    held = getattr(_computing, "held", False)
    entries, reads = getattr(_used, "entries", None), getattr(_used, "reads", None)
    computing_seconds = []

    def run(item: Any) -> Any:
        _computing.held, _used.entries, _used.reads, _timing.inner = held, entries, reads, [0.0]
        try:
            return function(item)
        finally:
            computing_seconds.append(_timing.inner[0])
            _computing.held, _used.entries, _used.reads, _timing.inner = False, None, None, None

    started = time.perf_counter()
    with ThreadPoolExecutor(workers, thread_name_prefix="learnjax-cache") as pool:
        results = list(pool.map(run, items))
    if outer := getattr(_timing, "inner", None):
        outer[-1] += min(sum(computing_seconds), time.perf_counter() - started)
    return results


def still_hold(reads: list[dict]) -> bool:
    """Whether each entry in `reads` (`entries_read`) holds what it held then: its
    current version computed first where missing, so that one computed again
    with the same result still holds."""
    return _still_valid({"reads": reads}) is True


# `checkpoints.MANIFEST`, named here: checkpoints imports JAX, which the cache
# commands and a warm site build never need (tests/test_cache.py holds them equal).
MODEL_MANIFEST = "learnjax.json"


def _saved(key: str, kind: str) -> Path:
    """The file whose existence says the entry is complete: a model's manifest, written last."""
    path = _entry_path(key, kind)
    return path / MODEL_MANIFEST if kind in MODEL_KINDS else path


def _read_or_compute(key: str, kind: str, read: Callable[[], Any], compute_and_save: Callable[[], None], what: str, record: dict) -> Any:
    """`read()` of the cache entry `key`, first made by `compute_and_save()`
    unless it is saved and what its computation read is unchanged; `record`
    (less what the computation tells) is written beside it. The first check
    takes the entry's lock alone, so that reading a cached entry never waits
    behind another process's computation; computing takes the machine-wide
    computing lock, then checks again, since another process may have computed
    the entry meanwhile. In a cache that cannot be written (a read-only mount),
    a saved entry is read without its lock: entries are written once, atomically."""
    path, saved = _entry_path(key, kind), _saved(key, kind)

    def cannot_write(error: OSError) -> OSError:
        return OSError(
            f"the cache folder {str(cache_root())!r} cannot be written ({error.strerror or error}), "
            f"so {what} is not possible; set LEARNJAX_CACHE to a writable folder"
        )

    def current() -> bool:
        if not saved.exists():
            return False
        stored = _read_record(key)
        if stored is None:
            _write_record(key, {**record, "content": entry_content(key, kind)})  # an entry made before records existed
            return True
        return _still_valid(stored) is True  # its reads brought up to date first (computed where missing)

    try:
        with _lock(path):  # taken to find out whether the cache can be written
            pass
    except OSError as e:
        if not saved.exists():
            raise cannot_write(e) from None
        _note_use(key, kind, cached=True)
        return read()
    if current():  # checked outside the entry's lock: it may compute the entries this one read
        with _lock(path):
            if saved.exists():
                _note_use(key, kind, cached=True)
                return read()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(_one_computation_at_a_time())
            held.enter_context(_lock(path))
        except OSError as e:
            raise cannot_write(e) from None
        cached = current()
        if not cached:
            with _announced(what, path), entries_read() as reads, _timed() as took:
                compute_and_save()
            _write_record(key, {**record, **took, "reads": reads, "content": entry_content(key, kind)})
        _note_use(key, kind, cached)
        return read()


_loaded: dict[str, tuple[str | None, Any]] = {}  # the models this process read, by key: (content, model)


def forget_read_models() -> None:
    """Forget the models this process read, so that the next request reads the cache again."""
    _loaded.clear()


def cached_model(
    params: dict[str, Any],
    train: Callable,
    *,
    read: Callable[[Path], Any],
    make: Callable[[Path], None],
    what: str,
    entry: Callable[[dict[str, Any]], Any] | None,
    kind: str = "foundation",
) -> Any:
    """`read(folder)` of the model directory (a kind of `MODEL_KINDS`) keyed by
    `params` and the code of `train` (the function that trains it, with every
    package module it imports), made first by `make(folder)` where the cache
    has none. Read once per process. `entry(params)` is the public way to the
    same model, which `cache graph` calls to bring the entry up to date.

    Without an `entry`, `params` must name what the model is made from by its
    content (a hash of the model it starts from, of its data), as a "tuned"
    model's do: then no reader needs to check it again, so it is not counted
    among the entries a computation read (`entries_read`); the reader's own
    key covers the code that trains it."""
    source = source_of(train)
    found = computation(source)
    code = found.code()
    key = cache_key(kind, params, code)
    path = _entry_path(key, kind)
    record = {
        "kind": kind,
        "params": params,
        "code": code,
        "source": source,
        "entry": source_of(entry) if entry else None,
        "extra_files": [],
        "modules": sorted(found.modules),
        "reads": [],
    }
    with contextlib.nullcontext() if entry else _not_a_read():
        if key in _loaded:
            _note_use(key, kind, cached=True, content=_loaded[key][0])
            return _loaded[key][1]
        model = _read_or_compute(key, kind, lambda: read(path), lambda: make(path), what, record)
    _loaded[key] = (entry_content(key, kind), model)
    return model


def cached_json(kind: str, params: dict[str, Any], compute: Callable[..., Any], *, extra_files: tuple[str | os.PathLike, ...] = ()) -> Any:
    """`compute(**params)`, stored as JSON under a key of `kind`, `params` and the
    code that `compute` runs (`computation`): its own definitions, the package
    modules they import, and the Python files `extra_files` (code outside the
    library that `compute` runs). The entries it reads count by their content:
    one computed again with the same result leaves this one valid."""
    extra_files = tuple(str(Path(f).resolve()) for f in extra_files)
    source = source_of(compute)
    found = computation(source, extra_files) if source else None
    if found is None:  # no file to read it from (defined in an interactive session): its own source alone
        with _parsing:
            found = Computation(code_only(inspect.getsource(compute)), frozenset(), extra_files)
    code = found.code()
    key = cache_key(kind, params, code)
    path = _entry_path(key, kind)

    def compute_and_save() -> None:
        result = compute(**params)
        write_text(path, json.dumps(result, indent=1))

    record = {
        "kind": kind,
        "params": json.loads(json.dumps(params)),
        "code": code,
        "source": source,
        "extra_files": list(extra_files),
        "modules": sorted(found.modules),
        "reads": [],
    }
    return _read_or_compute(
        key, kind, lambda: json.loads(path.read_text(encoding="utf-8")), compute_and_save, f"measuring the {kind} experiment", record
    )


# --- Listing and pruning ------------------------------------------------------

XLA = "xla"  # `use_compilation_cache`'s folder: JAX's own entries
SITE_OUTPUTS = "site"  # the site build's outputs (docs/overrides/hooks/build_cache.py)
SITE_USED = "used.json"  # in it: the outputs the last build used
PAGE_VISITS = "page-visits"  # the browser tests' newest visit of the built site (tests/page_visits.py)
TEST_PASSES = "test-passes"  # each test's newest pass and what it read (tests/stored_passes.py)
# Kinds stored by keys the cache does not work out: never in the graph, removed whole.
UNKEYED_KINDS = ("compiled programs", "page outputs", "page visits", "test passes")
_ENTRY_NAME = re.compile(r"(?P<key>(?P<kind>.+)-[0-9a-f]{16})(?P<suffix>\..*)?")


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One entry of the cache folder and the files that make it up.

    `status`: "current" (this code reads it), "stale" (made by other code: never
    read again), "outdated" (this code's, but an entry it read holds something
    else now: computed again when next asked for), "waiting" (an entry it read
    must be computed again first: if that comes out the same, this one stays
    current), "incomplete" (its computation stopped, or is running),
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


# Where the foundation's computation lives (`source_of(pretrain)`, written out:
# pre-training sits in a later layer, and imports JAX).
FOUNDATION_SOURCE = {"file": "training/pretraining.py", "in_package": True, "function": "pretrain"}


def _status(key: str, kind: str, files: dict[str, Path]) -> str:
    if not _saved(key, kind).exists():
        return "incomplete"
    record = _read_record(key) if RECORD_SUFFIX in files else None
    if record is None and kind == "foundation":  # a model's manifest holds its recipe: the key follows from it
        try:
            recipe = json.loads(_saved(key, kind).read_text(encoding="utf-8"))["metadata"]["recipe"]
            record = {"kind": kind, "params": recipe, "source": FOUNDATION_SOURCE}
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return "unknown"
    if record is None or not isinstance(record.get("source") or {}, dict):
        return "unknown"  # a record learnjax did not write
    if kind == "foundation" and not record.get("source"):  # recorded before records named the computation
        record = {**record, "source": FOUNDATION_SOURCE}
    if "<" in str((record.get("source") or {}).get("function", "<")):
        return "unknown"  # a computation not found by name: a lambda, a nested function, or one without a file
    try:
        if _current_key(record) != key:
            return "stale"
        return {True: "current", False: "outdated", None: "waiting"}[_still_valid(record, compute_missing=False)]
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError):
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
        elif path.name == SITE_OUTPUTS and path.is_dir():
            entries.extend(_site_outputs(path))
        elif path.name == PAGE_VISITS and path.is_dir():
            # Keyed by the built site's bytes, which only a build knows: kept, and pruned with everything.
            entries.append(CacheEntry(PAGE_VISITS, "page visits", "current", _size(path), (path,)))
        elif path.name == TEST_PASSES and path.is_dir():
            # Checked against what each test read when the tests are next collected: kept, pruned with everything.
            entries.append(CacheEntry(TEST_PASSES, "test passes", "current", _size(path), (path,)))
        elif match := _ENTRY_NAME.fullmatch(path.name):
            groups.setdefault(match["key"], {})[match["suffix"] or ""] = path
    with files_held():  # listing edits no source: the package is read once, not once per entry
        for key, files in groups.items():
            data = {suffix: path for suffix, path in files.items() if not suffix.endswith(".lock")}
            if not data:
                continue  # a lock file alone: nothing stored
            kind = _ENTRY_NAME.fullmatch(key)["kind"]
            entries.append(CacheEntry(key, kind, _status(key, kind, files), sum(_size(p) for p in files.values()), tuple(files.values())))
    return sorted(entries, key=lambda e: e.name)


def _site_outputs(site: Path) -> list[CacheEntry]:
    """The site build's stored outputs, as two entries: those the last build
    used ("current") and the others ("stale": kept until pruned, so that a
    reverted edit finds its outputs again)."""
    try:
        used = {site / name for name in json.loads((site / SITE_USED).read_text(encoding="utf-8"))}
    except (OSError, ValueError, TypeError):
        used = None
    folders = ("blocks", "notebooks")
    items = [p for p in site.iterdir() if p.name not in (*folders, SITE_USED)]
    items += [p for folder in folders if (site / folder).is_dir() for p in (site / folder).iterdir()]
    entries = []
    for status, paths in (
        ("current", [p for p in items if used is None or p in used]),
        ("stale", [p for p in items if used is not None and p not in used]),
    ):
        if paths:
            entries.append(
                CacheEntry(
                    f"{SITE_OUTPUTS} ({len(paths)} outputs)",
                    "page outputs",
                    status if used is not None else "unknown",
                    sum(_size(p) for p in paths),
                    tuple(sorted(paths)),
                )
            )
    return entries


def entry_label(kind: str, params: dict) -> str:
    """An entry's name for people: its kind, and for a foundation model what its
    recipe makes it (objective, then what sets it apart from the default)."""
    if kind != "foundation":
        return kind
    details = [params.get("objective", "masked")]
    details += ["FAQ"] if params.get("faq_share") else []
    details += [params["language"]] if params.get("language") else []
    details += [params["tokenizer"]] if params.get("tokenizer", "word") != "word" else []
    return f"foundation ({', '.join(details)})"


def entry_graph() -> list[dict]:
    """The cache's entries as a graph: each with its status, its label, the seconds its
    computation took less those of entries computed inside it (its own cold
    cost), the entries it read, and the number of
    package modules its code covers. Compiled programs, page outputs and page
    visits, which read nothing by key, are left out. The current entries count as read
    (`entries_read`): a page showing the graph is shown again when one changes."""
    rows = []
    for entry in list_entries():
        if entry.kind in UNKEYED_KINDS:
            continue
        record = _read_record(entry.name) or {}
        if entry.status == "current":
            _note_use(entry.name, entry.kind, cached=True, content=record.get("content"))
        rows.append(
            {
                **entry.to_dict(),
                "label": entry_label(entry.kind, record.get("params") or {}),
                "seconds": record.get("own_seconds", record.get("seconds")),
                "reads": [r["entry"] for r in record.get("reads", ())],
                "modules": len(record.get("modules", ())),
            }
        )
    return rows


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
            if not (everything or entry.status in ("stale", "outdated", "incomplete")):
                kept.append(entry)
                continue
            if entry.kind in UNKEYED_KINDS:
                for path in entry.paths:
                    _remove(path)
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
