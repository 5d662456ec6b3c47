"""The API reference documents the library: every name the package root exports,
and nothing from outside `src/learnjax` (the benchmarks' measuring code is not
part of the library)."""

import importlib
import importlib.util
import re
from pathlib import Path

import learnjax

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "api.md"
LIBRARY = Path(learnjax.__file__).resolve().parent

# mkdocstrings' `::: module` lines, each with its indented options; `members: [a, b]` among them.
DIRECTIVE = re.compile(r"^::: *(?P<module>\S+)[ \t]*\n(?P<options>(?:[ \t]+\S.*\n?)*)", re.MULTILINE)
MEMBERS = re.compile(r"^\s*members:\s*\[(?P<names>[^\]]*)\]", re.MULTILINE)


def directives(text: str) -> dict[str, list[str] | None]:
    """Each documented module and the members it lists (None: all of them)."""
    found = {}
    for directive in DIRECTIVE.finditer(text):
        members = MEMBERS.search(directive["options"])
        found[directive["module"]] = [n.strip() for n in members["names"].split(",") if n.strip()] if members else None
    return found


def test_directives_are_read_as_mkdocstrings_reads_them():
    text = "# A\n\n::: pkg.one\n    options:\n      members: [a, b]\n\n::: pkg.two\n\ntext\n"
    assert directives(text) == {"pkg.one": ["a", "b"], "pkg.two": None}


def test_the_reference_documents_modules_of_the_library_only():
    documented = directives(REFERENCE.read_text(encoding="utf-8"))
    assert documented, "no `::: module` directive found in the API reference"
    for name, members in documented.items():
        spec = importlib.util.find_spec(name) if name.split(".")[0] == "learnjax" else None
        assert spec is not None and Path(spec.origin).resolve().is_relative_to(LIBRARY), f"{name} is not a module of src/learnjax"
        module = importlib.import_module(name)
        missing = [member for member in members or () if not hasattr(module, member)]
        assert not missing, f"the reference lists {missing}, which {name} does not have"


def test_every_name_the_package_exports_is_in_the_reference():
    documented = directives(REFERENCE.read_text(encoding="utf-8"))

    def documents(module_name: str, members: list[str] | None, name: str) -> bool:
        listed = name in members if members is not None else not name.startswith("_")
        return listed and getattr(importlib.import_module(module_name), name, None) is getattr(learnjax, name)

    missing = [name for name in learnjax.__all__ if not any(documents(m, members, name) for m, members in documented.items())]
    assert not missing, f"learnjax exports {missing}, which the API reference does not document"
