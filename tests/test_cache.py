"""The cache key follows the code, not its documentation; a first run says what it computes."""

import io
import json
import os
import subprocess
import sys
import threading

from learnjax.cache import _code_only, cache_key, cached_json


def test_documentation_does_not_change_the_key():
    plain = "def f(x):\n    return 2 * x\n\nSCALE = 2\n"
    documented = '"""Module."""\n\ndef f(x):\n    """Doubles."""\n    # twice\n    return 2 * x\n\nSCALE = 2\n"""The factor."""\n'
    assert _code_only(plain) == _code_only(documented)


def test_code_changes_the_key():
    assert _code_only("def f(x):\n    return 2 * x\n") != _code_only("def f(x):\n    return 3 * x\n")
    key = cache_key("k", {"a": 1}, "code")
    assert key != cache_key("k", {"a": 2}, "code")
    assert key != cache_key("k", {"a": 1}, "other code")


def test_a_body_of_documentation_only_stays_valid_code():
    tree = _code_only('class A:\n    """Only a docstring."""\n')
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


def test_an_experiment_may_compute_another_inside_its_own_computation(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path))
    result = []
    worker = threading.Thread(target=lambda: result.append(cached_json("outer", {"x": 21}, _double_plus_one)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the nested computation waited for its own lock"
    assert result == [43]


_TIMED_COMPUTATION = """
import json, sys, time
from learnjax.cache import cached_json

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
