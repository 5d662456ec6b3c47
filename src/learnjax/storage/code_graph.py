"""Which of the package's modules a piece of code runs: its import graph, read with `ast`.

Nothing is imported or run. Every module of the package is found by walking its
folder (sub-packages included); an import anywhere in a module counts, inside
functions too, except under `if TYPE_CHECKING:` (never run). Relative imports
are resolved against the importing module; importing `a.b.c` runs the packages
`a` and `a.b` first, so they count too; a name that a package re-exports
(lazily or not) leads to the module its package imports it from; a string that
names a module (`python -m pkg.cli`) counts as running it.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ImportGraph:
    """The modules of one package: their files, and the package modules each one imports."""

    package: str
    files: dict[str, Path]
    edges: dict[str, frozenset[str]]

    def closure(self, roots: Iterable[str], stop_at: Iterable[str] = ()) -> frozenset[str]:
        """`roots` and every package module they import, transitively; a module
        in `stop_at` is neither included nor followed."""
        stop, seen = set(stop_at), set()
        todo = [r for r in roots if r in self.files]
        while todo:
            name = todo.pop()
            if name in seen or name in stop:
                continue
            seen.add(name)
            todo.extend(self.edges.get(name, ()))
        return frozenset(seen)


def _module_name(package: str, package_dir: Path, path: Path) -> str:
    parts = path.relative_to(package_dir).with_suffix("").parts
    return ".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside `if TYPE_CHECKING:` bodies."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


class _Resolver:
    """Turns the import statements of package modules into the package modules they run."""

    def __init__(self, package: str, files: dict[str, Path], trees: dict[str, ast.Module]):
        self.package, self.files, self.trees = package, files, trees

    def is_package(self, module: str) -> bool:
        return self.files[module].name == "__init__.py"

    def base(self, node: ast.ImportFrom, module: str | None) -> str | None:
        """The absolute module a `from ... import` reads from (None: a relative import outside any module)."""
        if not node.level:
            return node.module
        if module is None:
            return None
        parts = module.split(".") if self.is_package(module) else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
        return ".".join([*parts, *([node.module] if node.module else [])])

    def with_parents(self, module: str) -> set[str]:
        parts = module.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & self.files.keys()

    def target(self, dotted: str, name: str | None, seen: frozenset = frozenset()) -> set[str]:
        """The package modules that `from dotted import name` (or `import dotted`) runs."""
        if dotted != self.package and not dotted.startswith(self.package + "."):
            return set()
        if name and f"{dotted}.{name}" in self.files:
            return self.with_parents(f"{dotted}.{name}")
        if dotted not in self.files:
            return set()
        if name and self.is_package(dotted) and (dotted, name) not in seen:
            exported = self.reexported(dotted, name, seen | {(dotted, name)})
            if exported:
                return self.with_parents(dotted) | exported
        return self.with_parents(dotted)

    def reexported(self, package: str, name: str, seen: frozenset) -> set[str]:
        """Where the package's `__init__` imports `name` from (type checkers' imports included:
        they state where a lazily re-exported name lives)."""
        for node in ast.walk(self.trees[package]):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name and (base := self.base(node, package)):
                        return self.target(base, alias.name, seen)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname == name:
                        return self.target(alias.name, None, seen)
        return set()

    def imports(self, tree: ast.AST, module: str | None) -> set[str]:
        """The package modules the code in `tree` runs by importing them (or naming them as a string)."""
        skipped = _type_checking_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found |= self.target(alias.name, None)
            elif isinstance(node, ast.ImportFrom) and (base := self.base(node, module)):
                for alias in node.names:
                    found |= self.target(base, None if alias.name == "*" else alias.name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in self.files:
                found |= self.with_parents(node.value)
        return found - {module}


@functools.lru_cache(maxsize=1024)
def _parse(path: Path, version: tuple) -> ast.Module:
    """A file's syntax tree, parsed once per version of the file."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.lru_cache(maxsize=4096)
def _edges(resolver_key: tuple, module: str, version: tuple) -> frozenset[str]:
    """A module's imports, found once per version of it and of the package's
    layout (its modules, and its packages' `__init__` files, which re-export)."""
    return frozenset(_RESOLVERS[resolver_key].imports(_RESOLVERS[resolver_key].trees[module], module))


_RESOLVERS: dict[tuple, _Resolver] = {}


@functools.lru_cache(maxsize=8)
def _graph(package_dir: Path, versions: tuple) -> tuple[ImportGraph, _Resolver]:
    package = package_dir.name
    version_of = {path: version for path, *version in versions}
    files = {_module_name(package, package_dir, Path(path)): Path(path) for path in version_of}
    trees = {name: _parse(path, tuple(version_of[str(path)])) for name, path in files.items()}
    resolver = _Resolver(package, files, trees)
    layout = (str(package_dir), tuple(files), tuple((p, *v) for p, *v in versions if p.endswith("__init__.py")))
    _RESOLVERS[layout] = resolver
    edges = {name: _edges(layout, name, tuple(version_of[str(path)])) for name, path in files.items()}
    return ImportGraph(package, files, edges), resolver


_held: dict[Path, tuple] | None = None  # the versions read inside `files_held`, by package folder


@contextlib.contextmanager
def files_held() -> Iterator[None]:
    """Inside the block, the package's files are taken to stay as they are:
    `package_versions` (its files and their versions, from which the import
    graph is worked out) reads each package's folder once instead of at every
    question (a site build asks at every executed block). Only for work that
    edits none of them."""
    global _held
    outer, _held = _held, {} if _held is None else _held
    try:
        yield
    finally:
        _held = outer


def package_versions(package_dir: Path) -> tuple:
    """Each source file of the package with its modification time and size: what
    a result worked out from the package's code is kept under."""
    if _held is not None and package_dir in _held:
        return _held[package_dir]
    found = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(package_dir.rglob("*.py")))
    if _held is not None:
        _held[package_dir] = found
    return found


def import_graph(package_dir: Path) -> ImportGraph:
    """The import graph of the package in `package_dir`, read again whenever one of its files changed."""
    return _graph(package_dir, package_versions(package_dir))[0]


def imports_of(code: str | list[ast.stmt], package_dir: Path, module: str | None = None) -> frozenset[str]:
    """The package modules that `code` (source or statements, inside module `module`
    or outside the package) imports directly."""
    tree = ast.parse(code) if isinstance(code, str) else ast.Module(body=code, type_ignores=[])
    return frozenset(_graph(package_dir, package_versions(package_dir))[1].imports(tree, module))


def _bound_names(statement: ast.stmt) -> set[str]:
    """The names a module-level statement defines."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
    return {node.id for target in targets if target is not None for node in ast.walk(target) if isinstance(node, ast.Name)}


def _runs_on_import(statement: ast.stmt) -> bool:
    """Whether a statement that defines nothing does something when its module is
    imported: not a docstring, a script's `if __name__ == "__main__":` or an
    `if TYPE_CHECKING:`."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return False
    if isinstance(statement, ast.If):
        test = ast.unparse(statement.test).replace("'", '"')
        return test not in ('__name__ == "__main__"', "TYPE_CHECKING", "typing.TYPE_CHECKING")
    return True


def definition_closure(source: str, name: str) -> list[ast.stmt]:
    """The module-level statements of `source` that its definition `name` needs:
    the definition, those defining a name it uses, transitively, and those that
    define nothing but run on import (a configuration call), in the module's
    order. A function's own code is what runs, not all of its module."""
    body = [s for s in ast.parse(source).body if not (isinstance(s, ast.ImportFrom) and s.module == "__future__")]
    defines = [(statement, _bound_names(statement)) for statement in body]
    wanted = {name}
    reached = {i for i, (statement, names) in enumerate(defines) if not names and _runs_on_import(statement)}
    for i in reached:
        wanted |= {node.id for node in ast.walk(body[i]) if isinstance(node, ast.Name)}
    while True:
        new = [i for i, (_, names) in enumerate(defines) if i not in reached and names & wanted]
        if not new:
            return [body[i] for i in sorted(reached)]
        for i in new:
            reached.add(i)
            wanted |= {node.id for node in ast.walk(body[i]) if isinstance(node, ast.Name)}


def module_of_file(file: Path, package_dir: Path) -> str | None:
    """The dotted name of `file` when it lies inside the package, else None."""
    file, package_dir = Path(file).resolve(), Path(package_dir).resolve()
    return _module_name(package_dir.name, package_dir, file) if file.is_relative_to(package_dir) else None
