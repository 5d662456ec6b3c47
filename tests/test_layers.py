"""The library's structure: layers that import only downward, no import circle,
and no module reaching into another's private (`_name`) parts.

    files/ <- text/ <- data/ <- models/ <- storage/ <- training/ <- evaluation/ <- experiments/ <- cli/
    site/ (tables, plots, the pages' figures) beside experiments/: its figures may
    use every layer up to evaluation/; its tables and plots import nothing of learnjax

Imports are read with `ast` from the source, all of them: at the top, inside
functions and under `if TYPE_CHECKING:`.
"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "learnjax"

CHAIN = ("files", "text", "data", "models", "storage", "training", "evaluation", "experiments", "cli")
# The layers each layer may import from: those before it in the chain, and itself.
ALLOWED = {layer: set(CHAIN[: i + 1]) for i, layer in enumerate(CHAIN)}
ALLOWED["site"] = set(CHAIN[: CHAIN.index("evaluation") + 1]) | {"site"}
PLAIN = ("learnjax.site.render", "learnjax.site.plots")  # drawing and tables only: no model, no training
ALLOWED["experiments"] |= {"site"}
ALLOWED["cli"] |= {"site"}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The learnjax module `name` is in: itself, or the longest module prefix (a name in it)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The learnjax modules that `module` imports (`from m import x` counts x where
    x is a module, else m)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_resolve(a.name, modules) for a in node.names if a.name.startswith("learnjax"))))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("learnjax"):
                continue
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}", modules)
                found.add(target if target == f"{base}.{alias.name}" else _resolve(base, modules))
    found.discard(module)
    found.discard(None)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = library_modules(package)
    return {module: imports_of(module, path, modules) for module, path in modules.items()}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root, which re-exports


def backward_imports(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        if layer is None:
            continue  # the package root re-exports from any layer; nothing imports it (checked below)
        for target in sorted(targets):
            if target == "learnjax":
                problems.append(f"{module} imports from the package root (import from the module itself)")
            elif layer not in ALLOWED:
                problems.append(f"{module} is in no layer ({', '.join(ALLOWED)})")
            elif layer_of(target) not in ALLOWED[layer]:
                problems.append(f"{module} ({layer}/) imports {target} ({layer_of(target)}/), a later layer")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_from_a_later_layer():
    assert backward_imports(import_graph()) == []


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_tables_and_plots_import_nothing_of_the_library():
    graph = import_graph()
    assert {module: graph[module] for module in PLAIN if graph.get(module)} == {}


def test_every_module_is_in_a_layer():
    assert [m for m in library_modules() if m != "learnjax" and layer_of(m) not in ALLOWED] == []


# --- private names ---------------------------------------------------------------

def _python_sources() -> dict[str, str]:
    """Every piece of Python in the repository that may use the library: source files
    and the Python blocks of the pages."""
    sources = {}
    for folder in ("src", "tests", "benchmarks", "snippets", "docs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            sources[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "docs").rglob("*.md")):
        blocks = re.findall(r"^[ \t]*```(?:python|py)[^\n]*\n(.*?)^[ \t]*```", path.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
        for i, block in enumerate(blocks):
            sources[f"{path.relative_to(ROOT)}#{i}"] = block
    for path in [ROOT / "conftest.py"]:
        sources[path.name] = path.read_text(encoding="utf-8")
    return sources


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(where: str, source: str, own: str | None) -> list[str]:
    """`_name`s of learnjax modules other than `own` that `source` uses: imported by
    name, read as an attribute of an imported module, set by
    `setattr(module, "_name", ...)`, or named in a string
    (`monkeypatch.setattr("learnjax.x._name", ...)`)."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return []  # a page's block that is not Python as it stands (the page tests run those)
    modules = library_modules()
    aliases: dict[str, str] = {}  # local name -> learnjax module
    other_modules = {"self", "cls"}  # names whose private parts are their own business
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("learnjax"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "learnjax"
                else:
                    other_modules.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("learnjax") and not node.level:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full in modules:
                    aliases[a.asname or a.name] = full
                elif _private(a.name) and node.module != own:
                    found.append(f"{where}: from {node.module} import {a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain = []
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                target = ".".join([aliases[value.id], *reversed(chain)])
                if target in modules and target != own:
                    found.append(f"{where}: {target}.{node.attr}")
            elif isinstance(value, ast.Name) and not chain and value.id not in other_modules:
                found.append(f"{where}: {value.id}.{node.attr}")  # another object's private part
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) \
                and node.args[0].id in aliases and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                and _private(node.args[1].value) and aliases[node.args[0].id] != own:
            found.append(f"{where}: {aliases[node.args[0].id]}.{node.args[1].value}")  # setattr(module, "_name", ...)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for m in re.finditer(r"\blearnjax((?:\.[A-Za-z]\w*)+)\.(_[A-Za-z]\w*)", node.value):
                target = "learnjax" + m.group(1)
                if target in modules and target != own and _private(m.group(2)):
                    found.append(f"{where}: {target}.{m.group(2)}")
    return found


def test_no_module_uses_another_modules_private_names():
    modules = {str(path.relative_to(ROOT)): name for name, path in library_modules().items()}
    found = []
    for where, source in _python_sources().items():
        if where != "tests/test_layers.py":  # its own examples below
            found += private_uses(where, source, modules.get(where))
    assert found == []


# --- the checks catch what they are meant to ----------------------------------------

@pytest.fixture
def package(tmp_path: Path):
    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "learnjax"
        for name, text in {"__init__.py": "", **files}.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return root
    return make


def test_a_circle_is_found(package):
    root = package({"text/__init__.py": "", "text/a.py": "def f():\n    from learnjax.text import b\n",
                    "text/b.py": "from learnjax.text.a import f\n"})
    assert circles(import_graph(root)) == [["learnjax.text.a", "learnjax.text.b"]]


def test_an_import_from_a_later_layer_is_found(package):
    root = package({"data/__init__.py": "", "training/__init__.py": "", "training/loops.py": "",
                    "data/corpus.py": "def f():\n    from learnjax.training import loops\n",
                    "site/__init__.py": "", "site/plots.py": "import learnjax.experiments\n", "experiments/__init__.py": ""})
    assert backward_imports(import_graph(root)) == [
        "learnjax.data.corpus (data/) imports learnjax.training.loops (training/), a later layer",
        "learnjax.site.plots (site/) imports learnjax.experiments (experiments/), a later layer",
    ]


def test_a_private_name_used_elsewhere_is_found():
    source = ("from learnjax.experiments import _label_efficiency\n"
              "from learnjax.data import corpus\nimport learnjax.text.subword as sw\n"
              "corpus._sentence('x'); sw._backend; corpus.build_corpus(); corpus.__name__\n"
              "import os\nos._exit; tokenizer._backend\n"
              "monkeypatch.setattr(corpus, '_world_sentence', None)\n"
              "monkeypatch.setattr('learnjax.storage.cache._lock', None)\n")
    assert sorted(private_uses("x.py", source, own=None)) == sorted([
        "x.py: from learnjax.experiments import _label_efficiency",
        "x.py: learnjax.data.corpus._sentence",
        "x.py: learnjax.text.subword._backend",
        "x.py: learnjax.storage.cache._lock",
        "x.py: tokenizer._backend",
        "x.py: learnjax.data.corpus._world_sentence",
    ])
    assert private_uses("x.py", "from learnjax.data import corpus\ncorpus._sentence('x')\n", own="learnjax.data.corpus") == []
