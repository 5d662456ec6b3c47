"""A pytest plugin (named in the root conftest's `PLUGINS`): a test whose every
input is byte for byte what it was when it last passed is not run again; its
pass is read back and reported as "reused".

A test's inputs are worked out, not listed:

- the code it can run: its own file (a test module, a page, a module whose
  docstrings it runs) and every harness file, and the package modules that the
  test file, the harness files it imports and the conftests import (for a page
  or docstrings: that their examples import), transitively
  (`learnjax.storage.code_graph`);
- the repository's files it and its fixtures opened, and the folders they
  listed, as Python's audit hooks saw them while it ran (an import that read a
  cached `.pyc` counts as reading its `.py`);
- when it or a fixture started another process, which may read anything: every
  file of the repository, and the external tools in `TOOLS`;
- the environment: Python, the installed distributions and their versions,
  the machine's platform and core count, and the `LEARNJAX_`, `JAX_` and `XLA_`
  variables (save `NOT_INPUTS`, which only turn a skip into a failure).

A file's tests are reused all together or not at all (a page's blocks share one
namespace; a module's tests may share a fixture), and only when each of them
passed. A failure, a skip or an expected failure is never stored. In CI
(`LEARNJAX_CI=1`), and with `LEARNJAX_RERUN_TESTS=1`, every test runs; passes
are still stored. A pytest started by a test (a child run of the harness) runs
everything and stores nothing. What is not seen: a file only asked whether it
exists, and what a C extension reads without Python's `open`.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import pytest
from _pytest.reports import TestReport

# --8<-- [start:settings]
PACKAGE = "src/learnjax"  # the package whose import graph bounds a test's code
HARNESS = "tests"  # the folder of the test modules and the helpers they import
# What a run makes or the environment owns (as in .gitignore): never an input.
IGNORED = {".git", ".venv", ".venv-lowest", "site", "__pycache__", ".pytest_cache",
           ".hypothesis", ".cache", "build", "dist", "test-artifacts", ".mypy_cache",
           ".ruff_cache"}
# Programs a test's child processes may start, besides Python's own.
TOOLS = ("/usr/bin/chromium", "/usr/bin/git")
ENVIRONMENT_PREFIXES = ("LEARNJAX_", "JAX_", "XLA_", "PYTHONHASHSEED")
RERUN_VARIABLE = "LEARNJAX_RERUN_TESTS"  # set to 1: every test runs
CI_VARIABLE = "LEARNJAX_CI"  # set to 1 (in CI): every test runs
# Variables that only turn a skip into a failure: a pass means the same without them.
NOT_INPUTS = (RERUN_VARIABLE, CI_VARIABLE, "LEARNJAX_REQUIRE_BROWSER")
# --8<-- [end:settings]

FORMAT = 1  # bumped when what a record holds changes shape
_TOP = "LEARNJAX_STORED_PASSES"  # set by the outermost pytest: "on" for it and its workers, "off" below
_SPAWNING = {"subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty"}
_LISTING = {"os.listdir", "os.scandir"}

_recorders: list[StoredPasses] = []  # the active sessions' recorders; the audit hook feeds them
_hooked = False


def _audit(event: str, args: tuple) -> None:
    """Python's audit hook: notes each file opened, folder listed and process started.
    It must never raise (the event's caller would see the error)."""
    if not _recorders:
        return
    with contextlib.suppress(Exception):
        if event == "open" or event in _LISTING:
            path = args[0] if args else None
            path = "." if path is None and event in _LISTING else path
            if isinstance(path, (str, bytes, os.PathLike)):  # not a file descriptor
                _note(("read" if event == "open" else "list", os.path.abspath(os.fsdecode(path))))
        elif event in _SPAWNING:
            _note(("spawn", _program(event, args)))


def _program(event: str, args: tuple) -> str:
    """The program a process-starting event runs, for the record (a fork runs this one)."""
    try:
        if event == "subprocess.Popen":
            program = args[0] if args[0] is not None else (args[1] if isinstance(args[1], (str, bytes)) else args[1][0])
        elif event in ("os.fork", "os.forkpty"):
            return "fork"
        else:
            program = args[0] if event != "os.spawn" else args[1]
        return os.fsdecode(program) if isinstance(program, (str, bytes, os.PathLike)) else str(program)
    except (IndexError, TypeError, ValueError):
        return event


def _note(event: tuple) -> None:
    for recorder in _recorders:
        recorder.events.append(event)


def pytest_configure(config):
    """Only the outermost pytest and its workers store and reuse passes; a pytest
    that a test starts runs as if this plugin were not there."""
    worker = hasattr(config, "workerinput")
    state = os.environ.get(_TOP)
    if (worker and state != "on") or (not worker and state is not None):
        os.environ[_TOP] = "off"  # for its own children (restored at unconfigure)
        config.stash[_PREVIOUS] = state
        return
    config.stash[_PREVIOUS] = state
    os.environ[_TOP] = "on"
    global _hooked
    if not _hooked:  # an audit hook cannot be removed: one per process, fed while a session is active
        sys.addaudithook(_audit)
        _hooked = True
    plugin = StoredPasses(config)
    config.pluginmanager.register(plugin, "stored-passes")
    config.pluginmanager.register(Recording(plugin), "stored-passes-recording")
    _recorders.append(plugin)


def pytest_unconfigure(config):
    plugin = config.pluginmanager.get_plugin("stored-passes")
    if plugin in _recorders:
        _recorders.remove(plugin)
    previous = config.stash.get(_PREVIOUS, None)
    if previous is None:
        os.environ.pop(_TOP, None)
    else:
        os.environ[_TOP] = previous


_PREVIOUS = pytest.StashKey[str | None]()
_REUSED = pytest.StashKey[dict]()


class Digests:
    """File digests, each worked out once per file version (path, size, modification time)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple, str | None]] = {}

    def of(self, path: Path) -> str | None:
        """The SHA-256 of the file at `path`; None when there is none."""
        try:
            info = path.stat()
        except OSError:
            return None
        version = (info.st_size, info.st_mtime_ns, info.st_ino)
        known = self._known.get(str(path))
        if known and known[0] == version:
            return known[1]
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        except OSError:
            digest = None
        self._known[str(path)] = (version, digest)
        return digest


class StoredPasses:
    """Records what each test reads, stores its pass, and reuses stored passes."""

    def __init__(self, config) -> None:
        self.root = Path(config.rootpath).resolve()
        self.reading = os.environ.get(CI_VARIABLE) != "1" and os.environ.get(RERUN_VARIABLE) != "1"
        self.events: list[tuple] = []
        self.fixture_events: dict = {}  # FixtureDef -> the events of its set-ups
        self.collection_events: dict[Path, list[tuple]] = {}  # a file -> the events of its collection
        self.outcomes: dict[str, list[TestReport]] = {}
        self.digests = Digests()
        self._static: dict[Path, str] = {}
        self.items_by_file: dict[Path, list] = {}  # a file's tests, as collected
        self._environment: str | None = None
        self._repository: str | None = None  # held while the records are checked

    # --- keys ------------------------------------------------------------------

    def folder(self) -> Path:
        from learnjax.storage.cache import TEST_PASSES, cache_root

        return cache_root() / TEST_PASSES

    def record_path(self, nodeid: str) -> Path:
        name = hashlib.sha256(f"{self.root}\0{nodeid}".encode()).hexdigest()[:32]
        return self.folder() / f"{name}.json"

    def environment(self) -> str:
        if self._environment is None:
            parts = {
                "format": FORMAT,
                "python": sys.version,
                "platform": platform.platform(),
                "cores": os.cpu_count(),
                "distributions": sorted({(d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions()}.items()),
                "variables": sorted((k, v) for k, v in os.environ.items()
                                    if k.startswith(ENVIRONMENT_PREFIXES) and k not in NOT_INPUTS),
            }
            self._environment = _hash(parts)
        return self._environment

    def harness_files(self, test_file: Path) -> list[Path]:
        """The conftests, the plugins, and the harness modules `test_file` imports, transitively."""
        harness = self.root / HARNESS
        helpers = {p.stem: p for p in harness.glob("*.py") if not p.name.startswith("test_")}
        todo = [test_file, self.root / "conftest.py", *(helpers[n] for n in ("conftest", Path(__file__).stem) if n in helpers)]
        found: dict[Path, None] = {}
        while todo:
            path = todo.pop()
            if path in found or not path.is_file():
                continue
            found[path] = None
            if path.suffix == ".py":
                todo += [helpers[name] for name in _imported_names(path.read_text(encoding="utf-8")) if name in helpers]
        return sorted(found)

    def static_key(self, test_file: Path) -> str:
        """The key of a file's tests' code and environment (what its record must match)."""
        if test_file not in self._static:
            from learnjax.storage import code_graph

            package = self.root / PACKAGE
            imported = self.harness_files(test_file)
            graph = code_graph.import_graph(package)
            roots = self.package_roots(test_file, imported, package)
            # Every harness file counts by its bytes, imported or not (the docs harness
            # imports its script checks by name); only those imported lead into the package.
            harness = self.root / HARNESS
            files = sorted({*imported, *harness.glob("*.py")} - {p for p in harness.glob("test_*.py") if p != test_file})
            package_files = sorted(graph.files.values()) if roots is None else [graph.files[m] for m in sorted(graph.closure(roots))]
            package_files += [p for p in sorted(package.rglob("*")) if p.is_file() and p.suffix != ".py" and not self.ignored(p)]
            parts = {
                "environment": self.environment(),
                "files": {self.relative(p): self.digests.of(p) for p in [*files, *package_files, self.root / "pyproject.toml"]},
            }
            self._static[test_file] = _hash(parts)
        return self._static[test_file]

    def package_roots(self, test_file: Path, files: list[Path], package: Path) -> set[str] | None:
        """The package modules a file's tests import directly: those its Python
        files import, and for a page or docstrings, those their examples import
        (and the module whose docstrings they are); None (the whole package) when
        an example's code cannot be read."""
        from learnjax.storage import code_graph

        roots = set().union(*(code_graph.imports_of(f.read_text(encoding="utf-8"), package) for f in files if f.suffix == ".py"))
        if test_file.suffix == ".py" and test_file.is_relative_to(self.root / HARNESS):
            return roots
        if module := code_graph.module_of_file(test_file, package):
            roots.add(module)
        for item in self.items_by_file.get(test_file, ()):
            source = _example_source(item)
            if source is None:
                return None
            try:
                roots |= code_graph.imports_of(source, package)
            except SyntaxError:  # a console session, say: not Python as written
                return None
        return roots

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def ignored(self, path: Path) -> bool:
        return any(_ignored_name(part) for part in Path(path).relative_to(self.root).parts)

    def inside(self, path: str) -> Path | None:
        """`path` as the repository file it stands for, or None for what lies outside
        it or is ignored; a cached module `__pycache__/m.cpython-311.pyc` stands for `m.py`."""
        candidate = Path(path)
        if candidate.parent.name == "__pycache__" and candidate.suffix == ".pyc":
            candidate = candidate.parent.parent / (candidate.name.split(".")[0] + ".py")
        if not candidate.is_relative_to(self.root) or self.ignored(candidate):
            return None
        return candidate

    def listing(self, folder: Path) -> list[str]:
        try:
            return sorted(p.name for p in folder.iterdir() if not _ignored_name(p.name))
        except OSError:
            return []

    def whole_repository(self) -> str:
        """A digest of every file of the repository (for a test that started a process)."""
        if self._repository is not None:
            return self._repository
        digest = hashlib.sha256()
        for folder, names, files in os.walk(self.root):
            names[:] = sorted(n for n in names if not _ignored_name(n))
            for name in sorted(files):
                path = Path(folder) / name
                digest.update(f"{self.relative(path)}\0{self.digests.of(path)}\0".encode())
        return digest.hexdigest()

    def tools(self) -> dict[str, str | None]:
        found = {}
        for tool in TOOLS:
            try:
                info = Path(tool).resolve().stat()
                found[tool] = f"{info.st_size} {info.st_mtime_ns}"
            except OSError:
                found[tool] = None
        return found

    # --- recording -------------------------------------------------------------

    def inputs(self, events: list[tuple]) -> dict:
        """What `events` read: the repository files with their digests, the folders
        with their listings, and for a started process the whole repository and the tools."""
        files, folders, programs = set(), set(), set()
        for kind, value in events:
            if kind == "spawn":
                programs.add(value)
            elif (path := self.inside(value)) is not None:
                (files if kind == "read" else folders).add(path)
        return {
            "files": {self.relative(p): self.digests.of(p) for p in sorted(files)},
            "folders": {self.relative(p): self.listing(p) for p in sorted(folders)},
            "programs": sorted(programs),
            "repository": self.whole_repository() if programs else None,
            "tools": self.tools() if programs else None,
        }

    def still_true(self, record: dict, static: str) -> bool:
        """Whether every input in `record` is as it was."""
        if record.get("format") != FORMAT or record.get("static") != static:
            return False
        inputs = record["inputs"]
        if any(self.digests.of(self.root / p) != d for p, d in inputs["files"].items()):
            return False
        if any(self.listing(self.root / p) != names for p, names in inputs["folders"].items()):
            return False
        if inputs["repository"] is not None:
            return inputs["repository"] == self.whole_repository() and inputs["tools"] == self.tools()
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        """Marks the files whose every test's stored pass still holds; each worker
        decides alike, from the same records, before any test runs."""
        self.items_by_file = {}
        for item in items:
            self.items_by_file.setdefault(Path(item.path).resolve(), []).append(item)
        if not self.reading:
            return
        self._repository = self.whole_repository()  # no test runs while the records are checked
        for path, file_items in self.items_by_file.items():
            if not path.is_relative_to(self.root):
                continue
            static = self.static_key(path)
            records = [_read_json(self.record_path(item.nodeid)) for item in file_items]
            if all(r is not None and self.still_true(r, static) for r in records):
                for item, record in zip(file_items, records):
                    item.stash[_REUSED] = record
        self._repository = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """A reused test: its stored pass is reported, and nothing runs."""
        record = item.stash.get(_REUSED, None)
        if record is None:
            return None
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for when in ("setup", "call", "teardown"):
            outcome, longrepr = "passed", None
            if when == "teardown":  # what the test before it kept for this one, and the next does not need
                try:
                    item.session._setupstate.teardown_exact(nextitem)
                except Exception as error:  # a fixture's finalizer failed: as pytest reports it
                    outcome, longrepr = "failed", f"{type(error).__name__}: {error}"
            properties = [tuple(p) for p in record["properties"]] if when == "call" else []
            report = TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, outcome, longrepr, when,
                                user_properties=properties, reused=record["seconds"] if when == "call" else 0.0)
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        """What a file's collection reads (its module's imports, a page's includes) is its tests' input too."""
        start = len(self.events)
        try:
            return (yield)
        finally:
            if isinstance(collector, pytest.File):
                self.collection_events.setdefault(Path(collector.path).resolve(), []).extend(self.events[start:])

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        """A fixture that outlives one test may be set up in another test than the ones
        using it: what it read is kept for them. A function-scoped one is set up inside
        its test, whose own events hold its reads (kept, they would pile up per test)."""
        start = len(self.events)
        try:
            return (yield)
        finally:
            if fixturedef.scope != "function":
                self.fixture_events.setdefault(fixturedef, []).extend(self.events[start:])

    def pytest_runtest_logreport(self, report):
        if report.nodeid in self.outcomes:
            self.outcomes[report.nodeid].append(report)

    def begin(self, item) -> None:
        self.events.clear()
        self.outcomes[item.nodeid] = []

    def end(self, item) -> None:
        """Stores the test's pass, with what it and its fixtures read."""
        reports = self.outcomes.pop(item.nodeid, [])
        passed = [r for r in reports if r.passed and not hasattr(r, "wasxfail")]
        path = Path(item.path).resolve()
        if item.stash.get(_REUSED, None) is not None or len(passed) != 3 or len(reports) != 3 or not path.is_relative_to(self.root):
            return
        events = list(self.events)
        info = getattr(item, "_fixtureinfo", None)
        for name in item.fixturenames:
            for fixturedef in (info.name2fixturedefs.get(name, ()) if info else ()):
                events += self.fixture_events.get(fixturedef, [])
        events += self.collection_events.get(path, [])
        record = {
            "format": FORMAT,
            "nodeid": item.nodeid,
            "static": self.static_key(path),
            "inputs": self.inputs(events),
            "seconds": round(sum(r.duration for r in reports), 3),
            "properties": [list(p) for p in reports[1].user_properties],
        }
        from learnjax.files.atomic import write_text

        try:
            self.folder().mkdir(parents=True, exist_ok=True)
            write_text(self.record_path(item.nodeid), json.dumps(record))
        except OSError:
            pass  # a cache that cannot be written: the test runs next time too

    def pytest_report_teststatus(self, report, config):
        if getattr(report, "reused", None) is not None and report.when == "call":
            return "reused", "r", "REUSED"
        return None

    def pytest_terminal_summary(self, terminalreporter):
        reused = terminalreporter.stats.get("reused", [])
        if reused:
            seconds = sum(r.reused for r in reused)
            terminalreporter.write_sep("-", "stored passes")
            terminalreporter.write_line(
                f"{len(reused)} tests not run again: every input they read is as it was when they passed "
                f"({seconds:.0f} s of tests then). {RERUN_VARIABLE}=1 runs them.")


class Recording:
    """Around each test that runs: what it reads is recorded, and its pass stored.
    (A plugin of its own: `StoredPasses` implements the same hook to reuse.)"""

    def __init__(self, passes: StoredPasses) -> None:
        self.passes = passes

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.passes.begin(item)
        try:
            return (yield)
        finally:
            self.passes.end(item)


def _imported_names(source: str) -> set[str]:
    """The top-level names of the modules that `source` imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _ignored_name(name: str) -> bool:
    """Whether a file or folder of this name is never an input (see `IGNORED`)."""
    return name in IGNORED or name.endswith(".egg-info")


def _example_source(item) -> str | None:
    """The code a sybil item runs (a page's block, a docstring's example); None for another kind of test."""
    parsed = getattr(getattr(item, "example", None), "parsed", None)
    source = getattr(parsed, "source", parsed)  # a doctest example keeps its code in .source
    return source if isinstance(source, str) else None


def _hash(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

