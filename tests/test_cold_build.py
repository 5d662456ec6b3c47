"""The relative time budget's script, without running the hour-long measurement."""

import ast
import os
import subprocess
import sys

import pytest

from benchmarks import cold_build
from learnjax.storage.cache import code_only

ROOT = cold_build.ROOT


def test_a_planted_over_budget_figure_is_shown_over():
    figures = {"reference": {"build cold": 300.0, "build after a sampler change": 270.0, "tests warm": 180.0},
               "current": {"build cold": 360.0, "build after a sampler change": 200.0, "tests warm": 80.0}}
    rows = {row["figure"]: row for row in cold_build.verdicts(figures)}
    assert rows["build cold"]["ratio"] == pytest.approx(1.2) and rows["build cold"]["verdict"] == "holds"
    # 200 s of its own 360 s cold build: 0.56x, over the 0.35x budget
    assert rows["build after a sampler change"]["ratio"] == pytest.approx(200 / 360)
    assert rows["build after a sampler change"]["verdict"] == "over"
    assert rows["build after a sampler change"]["reference_ratio"] == pytest.approx(0.9)
    assert rows["tests warm"]["verdict"] == "holds"
    assert set(rows) == {"build cold", "build after a sampler change", "tests warm"}
    printed = cold_build.table(list(rows.values()))
    assert "over" in printed.splitlines()[2] and "0.56x" in printed


def test_cpu_seconds_give_their_own_ratio_and_verdict():
    wall = {"reference": {"build cold": 300.0}, "current": {"build cold": 600.0}}  # the current run was slowed by other work
    cpu = {"reference": {"build cold": 400.0}, "current": {"build cold": 440.0}}
    row = cold_build.verdicts(wall, cpu)[0]
    assert row["verdict"] == "over" and row["cpu_ratio"] == pytest.approx(1.1) and row["cpu_verdict"] == "holds"
    assert "1.10x  holds" in cold_build.table([row])


def test_a_run_counts_the_cpu_seconds_of_its_children(tmp_path):
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    command = [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}], check=True)"]
    run = cold_build.run_command(command, tmp_path, dict(os.environ))
    assert run["ok"] and run["cpu_seconds"] >= 0.3  # the grandchild's spin counts


def test_a_failed_run_is_neither_held_nor_over():
    rows = cold_build.verdicts({"reference": {"build cold": 300.0}, "current": {"build cold": None}})
    assert rows[0]["verdict"] == "failed" and rows[0]["ratio"] is None


@pytest.mark.parametrize("name", list(cold_build.CHANGES))
def test_the_one_line_change_is_seen_by_the_cache_key_and_still_compiles(name):
    path, function = cold_build.change_target(lambda p: (ROOT / p).is_file(), name)
    source = (ROOT / path).read_text(encoding="utf-8")
    changed = cold_build.with_pass(source, function)
    assert len(changed.splitlines()) == len(source.splitlines()) + 1
    assert code_only(changed) != code_only(source)
    compile(changed, path, "exec")


def test_the_pass_goes_after_the_docstring_at_the_body_s_indentation():
    source = 'def f(x):\n    """Doc."""\n    return x\n\n\ndef g():\n    return 1\n'
    changed = cold_build.with_pass(source, "f")
    assert changed == 'def f(x):\n    """Doc."""\n    pass\n    return x\n\n\ndef g():\n    return 1\n'
    body = ast.parse(changed).body[0].body
    assert isinstance(body[1], ast.Pass)
    with pytest.raises(SystemExit, match="'h'"):
        cold_build.with_pass(source, "h")


def _tree_with(tmp_path, name):
    path, function = cold_build.CHANGES[name][0]
    file = tmp_path / path
    file.parent.mkdir(parents=True)
    file.write_bytes(f"def {function}():\r\n    return 1\r\n".encode())
    return file


def test_a_change_is_undone_byte_for_byte_even_when_a_run_breaks_off(tmp_path):
    file = _tree_with(tmp_path, "sampler")
    before = file.read_bytes()
    seen = []

    def breaks_off(command, cwd, env):
        seen.append(file.read_bytes())
        raise KeyboardInterrupt

    steps = [cold_build.Step("change", "current", "sampler"),
             cold_build.Step("run", "current", "build after a sampler change", ("true",), "current-build")]
    with pytest.raises(KeyboardInterrupt):
        cold_build.execute(steps, {"reference": tmp_path, "current": tmp_path}, tmp_path, runner=breaks_off)
    assert seen == [before.replace(b"\r\n    return", b"\r\n    pass\r\n    return")]
    assert file.read_bytes() == before


def test_the_planned_run_changes_and_restores_each_file_it_touches(tmp_path):
    reference, current = tmp_path / "reference", tmp_path / "current"
    files = [_tree_with(tree, name) for tree in (reference, current) for name in cold_build.CHANGES]
    before = [file.read_bytes() for file in files]
    changed_during = []

    def fake(command, cwd, env):
        changed_during.append(sum(file.read_bytes() != b for file, b in zip(files, before)))
        return {"seconds": 1.0, "ok": True, "other_load": None}

    results = cold_build.execute(cold_build.plan("build", False), {"reference": reference, "current": current}, tmp_path, runner=fake)
    assert [file.read_bytes() for file in files] == before
    # cold, warm: none changed; the sampler change in both trees; undone; the CLI change in both
    assert changed_during == [0, 0, 0, 0, 2, 2, 0, 0, 2, 2]
    assert [(run["tree"], run["figure"]) for run in results["runs"]][:2] == [("reference", "build cold"), ("current", "build cold")]


def test_dry_run_lists_both_trees_commands_and_runs_nothing(capsys, monkeypatch):
    monkeypatch.setattr(cold_build, "execute", lambda *a, **k: pytest.fail("a dry run ran something"))
    assert cold_build.main(["--dry-run", "--with-cold-tests", "--against", "HEAD"]) == 0  # HEAD: in shallow clones too
    out = capsys.readouterr().out
    for tree, folder in (("reference", "$SCRATCH/reference"), ("current", str(ROOT))):
        for figure, command in (("build cold", "-m mkdocs build --strict"), ("tests cold", "-m pytest -q"), ("tests warm", "-m pytest -q")):
            assert any(line.startswith(f"[{tree}] {figure}: cd {folder} && PYTHONPATH={folder}/src") and command in line
                       for line in out.splitlines()), (tree, figure)
        assert f"[{tree}] add `pass` to generate() in {folder}/src/learnjax/" in out


def test_dry_run_finds_the_reference_commit_s_own_layout(capsys):
    if subprocess.run(["git", "cat-file", "-e", f"{cold_build.REFERENCE}^{{commit}}"], cwd=ROOT).returncode:
        pytest.skip(f"a clone without the reference commit {cold_build.REFERENCE}")
    assert cold_build.main(["--dry-run", "--only", "build"]) == 0
    out = capsys.readouterr().out
    assert "add `pass` to main() in $SCRATCH/reference/src/learnjax/cli.py" in out
    assert "add `pass` to generate() in $SCRATCH/reference/src/learnjax/generation.py" in out


def test_a_reference_that_is_not_a_commit_is_one_clear_line(capsys):
    with pytest.raises(SystemExit, match="--against 'no-such-rev' is not a commit"):
        cold_build.main(["--dry-run", "--against", "no-such-rev"])


def test_a_failed_run_names_the_dependency_missing_from_the_environment(tmp_path):
    command = [sys.executable, "-c", "import no_such_dependency_here"]
    run = cold_build.run_command(command, tmp_path, dict(os.environ))
    assert not run["ok"] and run["missing"] == ["no_such_dependency_here"]
    assert "ModuleNotFoundError" in run["tail"][-1]
    printed = cold_build.report({"runs": [{"tree": "reference", "figure": "build cold", **run}],
                                 "figures": {"reference": {"build cold": None}, "current": {}}, "split": {"reference": {}, "current": {}}},
                                {"reference": "r", "current": "c"})
    assert "missing from this environment: no_such_dependency_here" in printed
