"""Every file learnjax writes is readable as a plain `open(path, "w")` would make
it under the user's umask, not only by its owner as `mkstemp` makes it: a model
saved into a shared folder, `classify --output`, cache entries and records."""

import contextlib
import os
import stat
from pathlib import Path

import pytest

from learnjax.files.atomic import replacing, write_text
from learnjax.storage import cache
from test_model_directories import tiny_classifier, tiny_foundation

pytestmark = pytest.mark.skipif(not hasattr(os, "fchmod"), reason="files have no Unix modes here")
UMASKS = (0o022, 0o027, 0o002)


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plain_open_mode(directory: Path) -> int:
    """The mode `open(path, "w")` gives a new file here, under the current umask."""
    with open(directory / "plain.txt", "w") as f:
        f.write("x")
    return mode(directory / "plain.txt")


def modes_of_files(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): mode(p) for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "plain.txt"}


@pytest.mark.parametrize("mask", UMASKS)
def test_the_atomic_writer_gives_a_plain_files_mode(tmp_path, mask):
    with umask(mask):
        expected = plain_open_mode(tmp_path)
        write_text(tmp_path / "a.txt", "hello")
        with replacing(tmp_path / "b.bin") as f:
            f.write(b"\0")
    assert expected == 0o666 & ~mask
    assert modes_of_files(tmp_path) == {"a.txt": expected, "b.bin": expected}


@pytest.mark.parametrize("mask", UMASKS)
def test_saved_models_are_readable_as_the_umask_allows(tmp_path, mask):
    with umask(mask):
        expected = plain_open_mode(tmp_path)
        tiny_foundation().save(tmp_path / "foundation")
        tiny_classifier().save(tmp_path / "classifier")
        tiny_foundation().tokenizer.save(tmp_path / "tokenizer.json")
    written = modes_of_files(tmp_path)
    assert any(name.startswith("foundation/params-") for name in written) and "classifier/learnjax.json" in written
    assert set(written.values()) == {expected}, written


def test_classify_output_is_readable_as_the_umask_allows(tmp_path):
    from cli_process import run_cli

    classifier = tiny_classifier().save(tmp_path / "classifier")
    (tmp_path / "inbox.txt").write_text("the cat sat\nthe dog ran\n", encoding="utf-8")
    with umask(0o027):
        expected = plain_open_mode(tmp_path)
        result = run_cli("classify", "--model", classifier, "--input", tmp_path / "inbox.txt", "--output", tmp_path / "labels.csv")
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "labels.csv") == expected == 0o640


def test_cache_entries_and_records_are_readable_as_the_umask_allows(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNJAX_CACHE", str(tmp_path / "cache"))
    with umask(0o027):
        expected = plain_open_mode(tmp_path)
        assert cache.cached_json("modes", {"n": 2}, _double) == 4
    written = {name: m for name, m in modes_of_files(tmp_path / "cache").items() if not name.endswith(".lock")}
    assert sorted(name.endswith(cache.RECORD_SUFFIX) for name in written) == [False, True], written  # the entry and its record
    assert set(written.values()) == {expected}, written


def _double(n: int) -> int:
    return 2 * n
