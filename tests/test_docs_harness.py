"""The docs harness collects every Python block, as the reader sees it, and a
broken block or a broken snippet fails the suite."""

from textwrap import dedent

import pytest

from docs_harness import ROOT, PythonFenceParser, SnippetDocument, expand_snippets, python_fence_count

# The small projects below run pytest in a process of their own, without this
# environment's Hypothesis plugin: none of them uses it, and loading it is most of
# the second each such run took.
CHILD_PYTEST = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

PAGES = sorted((ROOT / "docs").rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_python_fence_escapes_collection(page):
    expanded = expand_snippets(page.read_text(encoding="utf-8"))
    document = SnippetDocument.parse(str(page), PythonFenceParser())
    assert len(document.regions) == python_fence_count(expanded)


def test_pages_have_python_blocks():
    assert sum(len(SnippetDocument.parse(str(p), PythonFenceParser()).regions) for p in PAGES) >= 5


def test_parser_collects_fences_with_attributes():
    text = dedent('''\
        ```python
        a = 1
        ```
        ```py title="x.py"
        b = 2
        ```
        ```python exec="on" session="s"
        c = 3
        ```
        ```pycon
        >>> d = 4
        ```
        ```bash
        echo not python
        ```
        ''')
    from sybil import Document

    document = Document(text, "page.md")
    sources = [str(region.parsed).strip() for region in PythonFenceParser()(document)]
    assert sources == ["a = 1", "b = 2", "c = 3"]
    assert python_fence_count(text) == 4  # the pycon block escapes: the guard test would fail


def test_snippet_includes_are_expanded_like_the_site():
    page = (ROOT / "docs" / "supervised-learning.md").read_text(encoding="utf-8")
    assert '--8<-- "src/learnjax/training/steps.py:supervised_step"' in page
    expanded = expand_snippets(page)
    assert "def supervised_update(" in expanded and "supervised_step = nnx.jit(supervised_update)" in expanded
    assert "--8<--" not in expanded


PROJECT_CONFTEST = f'''
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from pathlib import Path
from docs_harness import PythonFenceParser, SnippetDocument
from sybil import Sybil

class Document(SnippetDocument):
    mkdocs_yml = Path(__file__).parent / "mkdocs.yml"

pytest_collect_file = Sybil(parsers=[PythonFenceParser()], patterns=["*.md"], path="docs",
                            document_types={{".md": Document}}).pytest()
'''
MKDOCS_YML = 'site_name: t\nmarkdown_extensions:\n  - pymdownx.snippets:\n      base_path: !relative $config_dir\n      check_paths: true\n'


def _project(pytester, page: str, snippet: str | None = None):
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.path.joinpath("mkdocs.yml").write_text(MKDOCS_YML)
    (pytester.path / "docs").mkdir()
    (pytester.path / "docs" / "page.md").write_text(dedent(page))
    if snippet is not None:
        (pytester.path / "snippet.py").write_text(dedent(snippet))
    return pytester.runpytest_subprocess(*CHILD_PYTEST)


PAGE_WITH_INCLUDE = '''\
    ```python title="snippet.py"
    --8<-- "snippet.py"
    ```
    ```py
    assert answer == 42
    ```
    '''


def test_working_page_passes(pytester):
    result = _project(pytester, PAGE_WITH_INCLUDE, "answer = 6 * 7\n")
    result.assert_outcomes(passed=2)


def test_broken_block_fails(pytester):
    result = _project(pytester, '```python exec="on"\nlables = undefined_name\n```\n')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NameError*undefined_name*"])


def test_broken_snippet_file_fails(pytester):
    result = _project(pytester, PAGE_WITH_INCLUDE, "answer = 6 * 9\n")
    result.assert_outcomes(passed=1, failed=1)


PAGE_WITH_A_SCRIPT = '''\
    ```python
    import math
    ```
    ```python
    --8<-- "snippet.py"
    ```
    ```python
    assert (root, ran_as_main) == (3, True)
    ```
    '''
SCRIPT = '''\
    {imports}
    root = math.isqrt(9)
    if __name__ == "__main__":
        ran_as_main = True
    '''


@pytest.mark.parametrize("imports, outcomes", [("import math", {"passed": 3}), ("", {"passed": 1, "failed": 2})], ids=["whole", "missing-import"])
def test_a_whole_script_runs_as_main_on_its_own_and_lends_its_names(pytester, imports, outcomes):
    """A block that is one whole script runs as `python snippet.py` would: the page's
    earlier `import math` does not reach it, and later blocks read its names."""
    result = _project(pytester, PAGE_WITH_A_SCRIPT, SCRIPT.format(imports=imports))
    result.assert_outcomes(**outcomes)
    if outcomes.get("failed"):
        result.stdout.fnmatch_lines(["*NameError*math*"])


def test_missing_snippet_file_fails(pytester):
    result = _project(pytester, PAGE_WITH_INCLUDE)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*snippet.py*"])


def test_a_shown_block_that_needs_a_hidden_one_fails(pytester):
    page = '''\
        ```python exec="on"
        history = [3, 2, 1]
        ```
        ```python exec="on" source="above"
        print(history[-1])
        ```
        '''
    result = _project(pytester, page)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*NameError*history*"])


def test_hidden_blocks_see_what_the_shown_ones_made(pytester):
    page = '''\
        ```python
        x = 1
        ```
        ```python exec="on"
        assert x == 1
        x, y = 2, 3
        ```
        ```python exec="on"
        assert (x, y) == (2, 3)  # its own names, not undone by the shown block's older x
        ```
        ```python exec="on" source="below"
        x = 5
        ```
        ```python exec="on"
        assert (x, y) == (5, 3)
        ```
        '''
    result = _project(pytester, page)
    result.assert_outcomes(passed=5)


SKIPPING_TESTS = '''
import pytest

def test_skips():
    pytest.skip("the page is not in the built site yet")

@pytest.mark.xfail(reason="a known gap", strict=True)
def test_expected_to_fail():
    assert False
'''


def _skipping_project(pytester, path: str):
    """A project whose test file at `path` skips once and fails as expected once."""
    pytester.makeini("[pytest]\n")  # the project's root: paths are relative to it
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
                          "from docs_harness import fail_skips_in_ci as pytest_runtest_makereport\n")
    (pytester.path / path).parent.mkdir(parents=True, exist_ok=True)
    (pytester.path / path).write_text(SKIPPING_TESTS)
    return pytester.runpytest_subprocess(*CHILD_PYTEST, path)


@pytest.mark.parametrize("path", ["docs/test_page.py", "tests/test_browser.py"])
def test_in_ci_a_skip_among_the_docs_tests_fails(pytester, monkeypatch, path):
    monkeypatch.setenv("LEARNJAX_CI", "1")
    result = _skipping_project(pytester, path)
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*LEARNJAX_CI=1*may not skip: the page is not in the built site yet*"])


def test_outside_ci_or_outside_the_docs_tests_a_skip_stays_a_skip(pytester, monkeypatch):
    monkeypatch.delenv("LEARNJAX_CI", raising=False)
    _skipping_project(pytester, "docs/test_page.py").assert_outcomes(skipped=1, xfailed=1)
    monkeypatch.setenv("LEARNJAX_CI", "1")
    _skipping_project(pytester, "tests/test_other.py").assert_outcomes(skipped=1, xfailed=1)


# ------------------------------------------------ the set-up copied into another project

def with_settings(path, settings: str) -> str:
    """The text of `path` with its marked settings section (`# --8<-- [start:settings]`
    to `[end:settings]`) replaced by `settings`: the only lines a copy edits."""
    text = path.read_text(encoding="utf-8")
    start, end = "# --8<-- [start:settings]\n", "# --8<-- [end:settings]\n"
    assert text.count(start) == 1 and text.count(end) == 1, path
    before, rest = text.split(start)
    return before + start + settings + end + rest.split(end)[1]


COPIED_CONFTEST_SETTINGS = 'DOCS = "pages"\nSOURCE = "lib"\nHARNESS = "checks"\nSITE_TESTS = ()\nPLUGINS = []\n'
COPIED_HARNESS_SETTINGS = ('ROOT = Path(__file__).resolve().parents[1]\nMKDOCS_YML = ROOT / "mkdocs.yml"\n'
                           'CI_VARIABLE = "TINY_CI"\nNO_SKIPS_IN_CI = ("pages/",)\nSCRIPT_CHECKS = None\n')
TINY_PACKAGE = '''\
    """A tiny package.

    >>> double(21)
    42
    """


    def double(x):
        return 2 * x
    '''
TINY_PAGE = '''\
    # Doubling

    ```python
    from tiny import double

    print(double(21))
    ```

    ```python exec="on" source="above"
    assert double(21) == {expected}
    ```
    '''


def _copied_project(pytester, monkeypatch, expected: int):
    """A tiny mkdocs project (folders named unlike learnjax's) with the root conftest.py and
    tests/docs_harness.py copied in, only their settings edited."""
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "docs_harness.py").write_text(with_settings(ROOT / "tests" / "docs_harness.py", COPIED_HARNESS_SETTINGS))
    pytester.makeconftest(with_settings(ROOT / "conftest.py", COPIED_CONFTEST_SETTINGS))
    pytester.path.joinpath("mkdocs.yml").write_text(MKDOCS_YML.replace("site_name: t", "site_name: t\ndocs_dir: pages"))
    (pytester.path / "lib" / "tiny").mkdir(parents=True)
    (pytester.path / "lib" / "tiny" / "__init__.py").write_text(dedent(TINY_PACKAGE))
    (pytester.path / "pages").mkdir()
    (pytester.path / "pages" / "index.md").write_text(dedent(TINY_PAGE).format(expected=expected))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path / "lib"))  # the tiny package, as if installed
    return pytester.runpytest_subprocess(*CHILD_PYTEST, "-v")


def test_the_set_up_copied_into_another_project_runs_its_pages_and_docstrings(pytester, monkeypatch):
    result = _copied_project(pytester, monkeypatch, expected=42)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*lib/tiny/__init__.py::line:3,column:1 PASSED*", "*pages/index.md::line:3,column:1 PASSED*",
                                 "*pages/index.md::line:9,column:1 PASSED*"])


def test_the_copied_set_up_fails_on_a_wrong_output(pytester, monkeypatch):
    result = _copied_project(pytester, monkeypatch, expected=41)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*pages/index.md::line:9,column:1 FAILED*"])
