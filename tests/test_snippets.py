"""Every snippet runs standalone, as `python snippets/<name>.py` would: in a
namespace of its own (a missing import fails it), as `__main__`; and what it
prints is what its page says it shows. The run is the page's: each snippet is
included whole in a block of a page, which the docs harness runs as the script
(`docs_harness.ScriptEvaluator`) and checks with `snippet_headlines`. Running
it a second time here would train the same models again."""

from pathlib import Path

import pytest

from docs_harness import PythonFenceParser, ScriptEvaluator, SnippetDocument, whole_scripts
from snippet_headlines import CHECKS

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = sorted((ROOT / "snippets").glob("*.py"))
PAGES = sorted((ROOT / "docs").rglob("*.md"))


def test_every_snippet_s_headline_is_checked():
    assert sorted(CHECKS) == [p.name for p in SNIPPETS]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.name)
def test_a_page_runs_the_snippet_as_a_script(snippet):
    """Some page shows the whole snippet in a block that the docs harness runs as
    the script itself, so the page's run is the snippet's standalone test."""
    pages = [page for page in PAGES if snippet in whole_scripts(page.read_text(encoding="utf-8")).values()]
    assert pages, f"no page includes all of snippets/{snippet.name} in a block of its own"
    regions = PythonFenceParser()(SnippetDocument.parse(str(pages[0])))
    scripts = [region.evaluator.script for region in regions if isinstance(region.evaluator, ScriptEvaluator)]
    assert snippet in scripts, f"{pages[0].name} shows snippets/{snippet.name}, but not as a block run as the script"
