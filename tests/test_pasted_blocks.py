"""The code a page shows works when a reader pastes it, and shows the lesson.

The page tests (sybil, root conftest.py) already run a page's shown blocks in
order, in one namespace of their own: the page's hidden blocks run beside
them and never feed them (`docs_harness.HiddenBlockEvaluator`), so a shown
block that needs a hidden one fails there, at no extra cost. What a pytest
process cannot see is checked here: that the shown imports work in a fresh
interpreter started from the repository root (pytest has tests/ on its path
and much already imported; a reader has neither), and that a function a page
shows but never calls has every name it needs.
"""

import ast
import builtins
import json
import re
import subprocess
import symtable
import sys

import pytest

from docs_harness import ROOT, page_blocks

# --8<-- [start:settings]
# The project's settings: a copy of this file in another project edits these lines only.
PAGES = sorted((ROOT / "docs").rglob("*.md"))
# A reader pastes a page's imports into a `python` started here, the package installed.
READER_DIRECTORY = ROOT
PACKAGE_NAME = "learnjax"  # the package the pages import
MIN_SHOWN_IMPORTS = 20  # the pages show at least this many: the check found the blocks
# A line of Markdown table or note syntax (`| a | b |`, `|---|`, `??? note`, `!!! tip`)
# in a string: layout, which shown code leaves to the project's renderer (site.render).
MARKDOWN_SYNTAX = re.compile(r"^\s*(\||\?\?\?|!!!)", re.MULTILINE)
# --8<-- [end:settings]


def shown_blocks(page) -> list[str]:
    return [block.shown_source for block in page_blocks(page) if block.is_visible]


def imports_of(source: str) -> list[str]:
    """The import statements of `source`, at any depth, as source text."""
    return [ast.unparse(node) for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))]


# In a fresh `python` started from the repository root, as a reader's: runs each
# page's imports in a namespace of its own and reports the ones that fail.
IMPORT_CHECK = """
import json, sys
failures = {}
for page, statements in json.load(sys.stdin).items():
    namespace = {}
    for statement in statements:
        try:
            exec(statement, namespace)
        except Exception as error:
            failures.setdefault(page, []).append(f"{statement}: {type(error).__name__}: {error}")
print(json.dumps(failures))
"""


def failing_imports(statements_by_page: dict[str, list[str]]) -> dict[str, list[str]]:
    result = subprocess.run([sys.executable, "-c", IMPORT_CHECK], input=json.dumps(statements_by_page), cwd=READER_DIRECTORY,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_shown_imports_work_from_the_repository_root():
    statements = {p.relative_to(ROOT).as_posix(): [s for source in shown_blocks(p) for s in imports_of(source)] for p in PAGES}
    assert sum(map(len, statements.values())) >= MIN_SHOWN_IMPORTS
    assert failing_imports(statements) == {}


def test_the_import_check_sees_only_what_a_reader_has():
    # tests/ is on pytest's path (docs_harness is imported from there), not on a reader's.
    failures = failing_imports({"page.md": ["import json", "import docs_harness", f"from {PACKAGE_NAME} import no_such_name"]})
    assert [f.split(":")[:2] for f in failures["page.md"]] == [
        ["import docs_harness", " ModuleNotFoundError"], [f"from {PACKAGE_NAME} import no_such_name", " ImportError"],
    ]


def names_missing_in_functions(sources: list[str]) -> list[str]:
    """The global names that functions and classes of `sources` (one page's
    shown blocks) read but that no block binds at its top level, nor builtins:
    a missing import that only a reader calling the function would meet."""
    bound, used = set(dir(builtins)), []

    def walk(table):
        for child in table.get_children():
            used.extend((child.get_name(), s.get_name()) for s in child.get_symbols() if s.is_global() and s.is_referenced())
            walk(child)

    for source in sources:
        table = symtable.symtable(source, "<block>", "exec")
        bound.update(s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported())
        walk(table)
    return sorted({f"{scope} uses {name}" for scope, name in used if name not in bound})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shown_functions_have_every_name_they_use(page):
    assert names_missing_in_functions(shown_blocks(page)) == []


def test_a_function_with_a_missing_import_is_found():
    shown = ["import jax\n", "def double(x):\n    return 2 * jnp.asarray(x)\n\nclass Box:\n    size = jax.numpy.ones(len(SIZES))\n"]
    assert names_missing_in_functions(shown) == ["Box uses SIZES", "double uses jnp"]


def markdown_in_strings(source: str) -> list[str]:
    """The string literals of `source` (f-strings with `{}` for their fields) that hold a line of
    Markdown table or note syntax: what a block prints to lay out the page."""
    found, parts = [], set()  # parts: the pieces of f-strings, seen whole with their f-string
    for node in ast.walk(ast.parse(source)):
        if id(node) in parts:
            continue
        if isinstance(node, ast.JoinedStr):
            parts.update(id(n) for part in node.values for n in ast.walk(part))
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if MARKDOWN_SYNTAX.search(text):
            found.append(text)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shown_code_prints_no_markdown_syntax(page):
    """The code a reader is shown is the lesson; tables and notes come from learnjax.site.render."""
    problems = [f"{text!r}" for source in shown_blocks(page) for text in markdown_in_strings(source)]
    assert not problems, "\n".join(problems)


def test_markdown_syntax_in_strings_is_found():
    source = 'print("| a | b |")\nprint(f"    | {x} | {y:.1%} |")\nprint(\'??? note "x"\')\nprint("a | b", " | ".join(c))\n'
    assert sorted(markdown_in_strings(source)) == sorted(["| a | b |", "    | {} | {} |", '??? note "x"', " | "])
    assert markdown_in_strings('print("a | b", f"{x} | {y}", "what? !!!")') == []


def only_imports(source: str) -> bool:
    body = ast.parse(source).body
    return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_come_with_the_code_that_needs_them(page):
    """No shown block is imports alone: each import sits in the block that first needs it."""
    assert [source for source in shown_blocks(page) if only_imports(source)] == []
