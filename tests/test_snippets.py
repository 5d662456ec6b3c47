"""Every snippet runs standalone, as `python snippets/<name>.py` would: in a
namespace of its own (a missing import fails it), as `__main__`."""

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = sorted((ROOT / "snippets").glob("*.py"))


def test_there_are_snippets():
    assert SNIPPETS


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.name)
def test_snippet_runs_standalone(snippet, tmp_path, monkeypatch, capsys):
    # In this process rather than a new one: the same check, without paying
    # for another interpreter, JAX import and compilation of the same steps.
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(snippet), run_name="__main__")
    assert capsys.readouterr().out.strip(), "a snippet shows its reader a result"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.name)
def test_snippet_is_on_a_page(snippet):
    pages = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))
    assert f"snippets/{snippet.name}" in pages
