"""The stored passes (tests/stored_passes.py): a test runs again whenever
anything it reads changed, and only then.

Each test builds a small project (a package `toy`, tests that import it, data
files) and runs pytest on it in a child process, twice or more, changing one
input between runs."""

from __future__ import annotations

import re
from pathlib import Path
from textwrap import dedent

import pytest

from learnjax.storage.cache import TEST_PASSES, list_entries, prune

HARNESS = Path(__file__).resolve().parent

CONFTEST = f"""
import sys
sys.path.insert(0, {str(HARNESS)!r})
import stored_passes
stored_passes.PACKAGE = "src/toy"
pytest_plugins = ["stored_passes"]
"""


@pytest.fixture
def project(pytester, monkeypatch, tmp_path):
    """A project with a package of two modules and a test of each."""
    for name in ("LEARNJAX_STORED_PASSES", "LEARNJAX_CI", "LEARNJAX_RERUN_TESTS"):  # as a run of its own
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    pytester.makeconftest(CONFTEST)
    write(pytester.path, {
        "src/toy/__init__.py": "",
        "src/toy/area.py": "def square(side):\n    return side * side\n",
        "src/toy/words.py": "def shout(word):\n    return word.upper()\n",
        "tests/test_area.py": "from toy.area import square\n\ndef test_square():\n    assert square(3) == 9\n",
        "tests/test_words.py": "from toy.words import shout\n\ndef test_shout():\n    assert shout('hi') == 'HI'\n",
        "README.md": "toy\n",
    })
    monkeypatch.setenv("PYTHONPATH", str(pytester.path / "src"))
    return pytester


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(dedent(text))


def run(pytester, *args: str) -> dict[str, list[str]]:
    """Runs pytest on the project; the tests by outcome (passed, reused, failed, skipped)."""
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                                           "-p", "no:hypothesispytest", *args)  # unused; a second to load
    outcomes: dict[str, set[str]] = {}
    for line in result.stdout.lines:  # "path::test OUTCOME [ 50%]", or under xdist "[gw0] [ 50%] OUTCOME path::test"
        found = re.search(r"(\S+::(\w+)) (PASSED|REUSED|FAILED|SKIPPED|ERROR)\b|\b(PASSED|REUSED|FAILED|SKIPPED|ERROR) \S+::(\w+)", line)
        if found:
            outcome, name = (found[3], found[2]) if found[3] else (found[4], found[5])
            outcomes.setdefault(outcome.lower(), set()).add(name)  # the summary names it again
    return {key: sorted(value) for key, value in outcomes.items()}


def test_an_unchanged_test_is_reused_and_a_changed_module_reruns_only_its_readers(project):
    assert run(project) == {"passed": ["test_shout", "test_square"]}
    assert run(project) == {"reused": ["test_shout", "test_square"]}
    project.path.joinpath("src/toy/words.py").write_text("def shout(word):\n    return word.lower()\n")  # a fault
    assert run(project) == {"reused": ["test_square"], "failed": ["test_shout"]}
    assert run(project) == {"reused": ["test_square"], "failed": ["test_shout"]}  # a failure is never stored


def test_the_passes_show_in_the_cache_until_pruned_with_everything(project):
    run(project)
    assert [(e.name, e.kind) for e in list_entries()] == [(TEST_PASSES, "test passes")]
    prune()
    assert run(project) == {"reused": ["test_shout", "test_square"]}
    prune(everything=True)
    assert run(project) == {"passed": ["test_shout", "test_square"]}


def test_a_module_imported_through_another_counts(project):
    write(project.path, {"src/toy/area.py": "from toy.words import shout\n\ndef square(side):\n    return side * side\n"})
    run(project)
    project.path.joinpath("src/toy/words.py").write_text("def shout(word):\n    return word\n")
    assert run(project) == {"passed": ["test_square"], "failed": ["test_shout"]}


def test_a_file_read_and_a_folder_listed_are_inputs(project):
    write(project.path, {
        "data/a.txt": "1\n",
        "tests/test_data.py": """\
            from pathlib import Path

            DATA = Path(__file__).parents[1] / "data"

            def test_reads_a_file():
                assert (DATA / "a.txt").read_text() == "1\\n"

            def test_lists_a_folder():
                assert len(list(DATA.iterdir())) == 1
            """,
    })
    assert run(project, "tests/test_data.py") == {"passed": ["test_lists_a_folder", "test_reads_a_file"]}
    project.path.joinpath("README.md").write_text("not read by these tests\n")
    assert run(project, "tests/test_data.py") == {"reused": ["test_lists_a_folder", "test_reads_a_file"]}
    project.path.joinpath("data/a.txt").write_text("2\n")
    # A file's tests run together: the folder's test reruns with the file's.
    assert run(project, "tests/test_data.py") == {"passed": ["test_lists_a_folder"], "failed": ["test_reads_a_file"]}
    project.path.joinpath("data/a.txt").write_text("1\n")
    run(project, "tests/test_data.py")
    project.path.joinpath("data/b.txt").write_text("1\n")
    assert run(project, "tests/test_data.py") == {"passed": ["test_reads_a_file"], "failed": ["test_lists_a_folder"]}


def test_a_file_read_when_the_module_is_collected_is_an_input(project):
    write(project.path, {
        "data/a.txt": "1\n",
        "tests/test_collected.py": """\
            from pathlib import Path

            EXPECTED = int((Path(__file__).parents[1] / "data" / "a.txt").read_text())

            def test_expected():
                assert EXPECTED == 1
            """,
    })
    run(project, "tests/test_collected.py")
    project.path.joinpath("data/a.txt").write_text("2\n")
    assert run(project, "tests/test_collected.py") == {"failed": ["test_expected"]}


def test_what_a_shared_fixture_read_counts_for_each_test_using_it(project):
    """A session fixture set up during one file's test is an input of another file's test too."""
    write(project.path, {
        "data/a.txt": "1\n",
        "tests/conftest.py": """\
            from pathlib import Path
            import pytest

            @pytest.fixture(scope="session")
            def number():
                return int((Path(__file__).parents[1] / "data" / "a.txt").read_text())
            """,
        "tests/test_first.py": "def test_first(number):\n    assert number == 1\n",
        "tests/test_second.py": "def test_second(number):\n    assert number == 1\n",
    })
    files = ("tests/test_first.py", "tests/test_second.py")
    assert run(project, *files) == {"passed": ["test_first", "test_second"]}
    project.path.joinpath("data/a.txt").write_text("2\n")
    assert run(project, *files) == {"failed": ["test_first", "test_second"]}


def test_a_test_that_starts_a_process_reruns_when_any_file_changes(project):
    write(project.path, {"tests/test_child.py": """\
        import subprocess, sys

        def test_child():
            assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
        """})
    run(project)
    project.path.joinpath("README.md").write_text("changed\n")
    assert run(project) == {"passed": ["test_child"], "reused": ["test_shout", "test_square"]}


def test_skips_rerun_and_ci_or_the_variable_runs_everything(project, monkeypatch):
    write(project.path, {"tests/test_skip.py": "import pytest\n\ndef test_skip():\n    pytest.skip('not here')\n"})
    assert run(project) == {"passed": ["test_shout", "test_square"], "skipped": ["test_skip"]}
    assert run(project) == {"reused": ["test_shout", "test_square"], "skipped": ["test_skip"]}
    for variable in ("LEARNJAX_CI", "LEARNJAX_RERUN_TESTS"):
        monkeypatch.setenv(variable, "1")
        assert run(project, "tests/test_area.py") == {"passed": ["test_square"]}
        monkeypatch.delenv(variable)
    assert run(project, "tests/test_area.py") == {"reused": ["test_square"]}


def test_workers_reuse_passes_and_a_pytest_started_by_a_test_stores_none(project, monkeypatch):
    run(project)
    assert run(project, "-n", "2") == {"reused": ["test_shout", "test_square"]}
    monkeypatch.setenv("LEARNJAX_CACHE", str(project.path / "other-cache"))
    monkeypatch.setenv("LEARNJAX_STORED_PASSES", "on")  # as a child of a run
    run(project)
    assert run(project) == {"passed": ["test_shout", "test_square"]}
    assert not (project.path / "other-cache").exists()


def test_a_reused_test_between_two_that_run_leaves_no_set_up_behind(project):
    """The test before a reused one keeps what they share set up (their folder);
    the reused one tears it down for the next, as a run test would."""
    reads = "from pathlib import Path\n\ndef test_{0}():\n    assert (Path(__file__).parents[2] / 'data' / 'a.txt').read_text()\n"
    write(project.path, {
        "data/a.txt": "1\n",
        "tests/a/test_one.py": reads.format("one"),
        "tests/a/test_two.py": "def test_two():\n    pass\n",
        "tests/b/test_three.py": reads.format("three"),
    })
    files = ("tests/a/test_one.py", "tests/a/test_two.py", "tests/b/test_three.py")
    run(project, *files)
    project.path.joinpath("data/a.txt").write_text("2\n")
    assert run(project, *files) == {"passed": ["test_one", "test_three"], "reused": ["test_two"]}
