"""The cache key follows the code, not its documentation; a first run says what it computes;
a read-only cache is read; entries of older code are told apart and pruned."""

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from learnjax.storage.cache import (
    RECORD_SUFFIX,
    cache_key,
    cache_root,
    cached_json,
    code_only,
    computation,
    current_code,
    entries_used,
    list_entries,
    prune,
    source_of,
    use_compilation_cache,
)


def test_documentation_does_not_change_the_key():
    plain = "def f(x):\n    return 2 * x\n\nSCALE = 2\n"
    documented = '"""Module."""\n\ndef f(x):\n    """Doubles."""\n    # twice\n    return 2 * x\n\nSCALE = 2\n"""The factor."""\n'
    assert code_only(plain) == code_only(documented)


def test_code_changes_the_key():
    assert code_only("def f(x):\n    return 2 * x\n") != code_only("def f(x):\n    return 3 * x\n")
    key = cache_key("k", {"a": 1}, "code")
    assert key != cache_key("k", {"a": 2}, "code")
    assert key != cache_key("k", {"a": 1}, "other code")


def test_a_body_of_documentation_only_stays_valid_code():
    tree = code_only('class A:\n    """Only a docstring."""\n')
    assert "Pass" in tree


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _double(x):
    return 2 * x


def test_a_first_run_tells_a_terminal_what_it_computes_and_a_cached_one_is_silent(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cached_json("double", {"x": 21}, _double) == 42
    said = terminal.getvalue().splitlines()
    assert len(said) == 2 and "measuring the double experiment" in said[0] and str(tmp_path) in said[0], said
    assert said[1].startswith("learnjax: measuring the double experiment: done in "), said
    assert cached_json("double", {"x": 21}, _double) == 42
    assert len(terminal.getvalue().splitlines()) == 2  # read from the cache: nothing more said


def test_a_log_or_pipe_hears_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    assert cached_json("double", {"x": 1}, _double) == 2
    assert capsys.readouterr().err == ""


def _double_plus_one(x):
    return cached_json("double", {"x": x}, _double) + 1


def within(seconds: float, compute, waited_for: str) -> list:
    """`[compute()]`, in a thread of its own: a computation that deadlocks on a
    lock fails the test after `seconds` (naming what it `waited_for`) instead of
    hanging it."""
    result = []
    worker = threading.Thread(target=lambda: result.append(compute()), daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), waited_for
    return result


def test_an_experiment_may_compute_another_inside_its_own_computation(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    result = within(60, lambda: cached_json("outer", {"x": 21}, _double_plus_one), "the nested computation waited for its own lock")
    assert result == [43]


_TIMED_COMPUTATION = """
import json, sys, time
from learnjax.storage.cache import cached_json

def timed():
    started = time.time()
    time.sleep(1.0)
    return [started, time.time()]

print(json.dumps(cached_json(sys.argv[1], {}, timed)))
"""


def test_processes_sharing_a_cache_compute_one_entry_at_a_time(tmp_path):
    script = tmp_path / "timed.py"  # a file: the cache key reads the computation's source
    script.write_text(_TIMED_COMPUTATION, encoding="utf-8")
    env = {**os.environ, "LEARNJAX_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, str(script), name], env=env, stdout=subprocess.PIPE, text=True)
            for name in ("first", "second")]
    (a_start, a_end), (b_start, b_end) = sorted(json.loads(run.communicate(timeout=120)[0]) for run in runs)
    assert b_start >= a_end, "two computations overlapped"


# --- Portability and start-up -------------------------------------------------

def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_learnjax_imports_where_fcntl_does_not_exist():
    result = _python("import sys; sys.modules['fcntl'] = None  # as on Windows\nimport learnjax, learnjax.storage.cache, learnjax.cli")
    assert result.returncode == 0, result.stderr


def test_the_package_and_the_command_line_parser_load_without_jax():
    """`import learnjax` and `learnjax --help` do not wait for JAX to load; the
    package's names still resolve on first use."""
    result = _python("import sys, learnjax, learnjax.cli\nlearnjax.cli.build_parser().format_help()\nprint('jax' in sys.modules)\n"
                     "from learnjax import *\nprint(sorted(learnjax.__all__) == sorted(n for n in dir() if n in learnjax.__all__))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_listing_the_cache_never_loads_jax(tmp_path):
    """A warm site build asks the cache whether its models are whole; that
    alone must not load JAX (seconds of every build)."""
    from learnjax.storage import cache, checkpoints

    assert cache.MODEL_MANIFEST == checkpoints.MANIFEST
    model = tmp_path / "foundation-0123456789abcdef"
    model.mkdir()
    (model / checkpoints.MANIFEST).write_text("{}")
    result = _python("import sys\nfrom learnjax.storage.cache import list_entries\n"
                     "print([e.kind for e in list_entries()], 'jax' in sys.modules)", LEARNJAX_CACHE=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['foundation']", "False"]


# --- A cache that cannot be written -------------------------------------------

def _make_read_only(root: Path) -> None:
    """Makes a cache folder read-only, as a read-only mount is. chmod does not
    bind root, so where the tests run as root the files a read would create are
    made impossible to create instead: a folder where each entry's lock file
    goes, a file where the compiled programs' folder goes."""
    if os.geteuid() == 0:
        entries = [p for p in root.iterdir() if p.suffix != ".lock"]
        for lock in [*(e.with_name(e.name + ".lock") for e in entries), root / "computing.lock"]:
            lock.unlink(missing_ok=True)
            lock.mkdir()
        (root / "xla").touch()
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


@pytest.fixture
def read_only(tmp_path):
    """`_make_read_only`, undone afterwards so that the folder can be deleted."""
    made = []
    yield lambda root: made.append(root) or _make_read_only(root)
    for root in made:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_a_read_only_cache_serves_its_entries_and_says_what_it_cannot_compute(tmp_path, monkeypatch, read_only):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    assert cached_json("double", {"x": 21}, _double) == 42
    read_only(tmp_path / "cache")
    before = _files(tmp_path / "cache")
    assert cached_json("double", {"x": 21}, _double) == 42
    assert _files(tmp_path / "cache") == before
    with pytest.raises(OSError) as raised:
        cached_json("double", {"x": 5}, _double)
    assert "cannot be written" in str(raised.value) and "LEARNJAX_CACHE" in str(raised.value)


def test_compiled_programs_are_not_cached_where_the_folder_cannot_be_written(tmp_path, read_only):
    import jax

    (tmp_path / "cache").mkdir()
    read_only(tmp_path / "cache")
    folder = tmp_path / "cache" / "xla"
    before = jax.config.jax_compilation_cache_dir
    assert use_compilation_cache(folder) is None
    assert jax.config.jax_compilation_cache_dir == before


def test_the_command_line_reads_the_default_model_from_a_read_only_cache(tmp_path, read_only):
    from learnjax import PretrainRecipe, foundation_model

    foundation_model()  # in the tests' own cache
    from learnjax.training.pretraining import pretrain

    key = cache_key("foundation", PretrainRecipe().to_dict(), computation(source_of(pretrain)).code())
    shutil.copytree(cache_root() / key, tmp_path / "cache" / key)
    read_only(tmp_path / "cache")
    before = _files(tmp_path / "cache")
    result = subprocess.run([sys.executable, "-m", "learnjax.cli", "fill-mask", "--top-k", "1", "Today I went to the café and drank [MASK]."],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "LEARNJAX_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "coffee" and result.stderr == ""  # no warnings either
    assert _files(tmp_path / "cache") == before


# --- Listing and pruning --------------------------------------------------------

def test_the_code_of_an_entry_is_found_again_from_its_record():
    """An entry's record names its computation by file and function; read back
    from the file alone (nothing imported), the code gives the same key part as
    when the entry was made: whatever the module, and with decorators."""
    from learnjax import experiments
    from learnjax.training import loops

    for compute in (experiments.measure_label_efficiency, experiments.measure_scaling_curve, loops.adamw, _double):
        source = source_of(compute)
        found = computation(source)
        assert found is not None and current_code({"source": source}) == found.code(), compute
    assert "learnjax.training.finetuning" in computation(source_of(experiments.measure_label_efficiency)).modules
    assert computation(source_of(_double)).modules == frozenset(), "a function that imports nothing of the package"


def _module_from(path: Path, body: str):
    path.write_text(body, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _statuses() -> dict[str, str]:
    return {e.kind: e.status for e in list_entries()}


def test_entries_of_older_code_are_stale_and_pruned_and_current_ones_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    triple = _module_from(tmp_path / "triple.py", "def triple(x):\n    return 3 * x\n").triple
    assert cached_json("triple", {"x": 2}, triple) == 6
    assert cached_json("double", {"x": 2}, _double) == 4
    (tmp_path / "cache" / "notes.txt").write_text("not the cache's", encoding="utf-8")
    (tmp_path / "cache" / "halfway-0123456789abcdef.json.tmp").write_text("[1, ", encoding="utf-8")  # a computation cut off
    assert _statuses() == {"triple": "current", "double": "current", "halfway": "incomplete"}

    (tmp_path / "triple.py").write_text("def triple(x):\n    return 3 * x + 0\n", encoding="utf-8")  # the code changed
    assert _statuses() == {"triple": "stale", "double": "current", "halfway": "incomplete"}
    removed, kept = prune()
    assert sorted(e.kind for e in removed) == ["halfway", "triple"] and [e.kind for e in kept] == ["double"]
    left = [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(("triple-", "halfway-"))]
    assert left == ["halfway-0123456789abcdef.json.lock"], "their files went too (an empty lock file stays: a computation may wait on it)"
    with entries_used() as used:
        assert cached_json("double", {"x": 2}, _double) == 4
    assert used[0]["cached"], "the current entry was read, not computed again"

    prune(everything=True)
    assert list_entries() == []
    assert (tmp_path / "cache" / "notes.txt").exists(), "files the cache did not make are never removed"


def test_an_entry_without_a_record_is_kept_until_read_again(tmp_path, monkeypatch):
    """Entries made before entries had records: a model's manifest tells its
    recipe (hence its key); a measurement is of unknown version, kept, and
    recorded the next time it is read."""
    from learnjax import PretrainRecipe, foundation_model

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    cached_json("double", {"x": 3}, _double)
    foundation_model(PretrainRecipe(n_texts=200, steps=2, batch_size=8), progress=False)
    for record in (tmp_path / "cache").glob(f"*{RECORD_SUFFIX}"):
        record.unlink()
    model = next(p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    shutil.copytree(model, tmp_path / "cache" / "foundation-0123456789abcdef")  # its manifest's recipe gives another key
    assert sorted((e.name == model.name, e.kind, e.status) for e in list_entries()) == [
        (False, "double", "unknown"), (False, "foundation", "stale"), (True, "foundation", "current")]
    removed, _ = prune()
    assert [e.name for e in removed] == ["foundation-0123456789abcdef"]
    cached_json("double", {"x": 3}, _double)
    assert _statuses()["double"] == "current"


def test_the_cache_commands_report_json(tmp_path, monkeypatch, capsys):
    from learnjax.cli import main

    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    cached_json("double", {"x": 4}, _double)
    triple = _module_from(tmp_path / "triple.py", "def triple(x):\n    return 3 * x\n").triple
    cached_json("triple", {"x": 4}, triple)
    (tmp_path / "triple.py").unlink()  # its computation is gone

    assert main(["cache", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["cache"] == str(tmp_path / "cache")
    assert {e["kind"]: e["status"] for e in listed["entries"]} == {"double": "current", "triple": "stale"}
    assert listed["total_bytes"] == sum(e["bytes"] for e in listed["entries"]) > 0

    assert main(["cache", "prune", "--json"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in pruned["removed"]] == ["triple"] and [e["kind"] for e in pruned["kept"]] == ["double"]
    assert pruned["freed_bytes"] == pruned["removed"][0]["bytes"]

    assert main(["cache", "prune", "--all"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert main(["cache", "list"]) == 0
    assert capsys.readouterr().out.startswith("0.0 MB in 0 entries")


def test_the_written_out_foundation_source_names_pretrain():
    from learnjax.storage.cache import FOUNDATION_SOURCE
    from learnjax.training.pretraining import pretrain

    assert FOUNDATION_SOURCE == source_of(pretrain)
