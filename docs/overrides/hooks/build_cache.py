"""Fast rebuilds: what the pages and the notebook computed is reused until it could change.

A build runs every executed block of every page and the whole notebook again,
although a one-line edit of the prose changes none of their output. This hook
keeps both in the learnjax cache:

- each executed Python block's output (markdown-exec), under a key of what it
  reads: its source and the sources of the blocks before it in its session,
  the code of the learnjax modules those import (transitively, from the
  package's import graph) and of the repository's own modules they import
  (`benchmarks/`), and the versions of the packages that draw the output. The
  cache entries it read (an experiment, the foundation model) are stored
  with it, each with a hash of its content: the output is reused while they
  hold the same content (an entry computed again with the same result keeps
  it). When one block of a session must run again, the blocks before it that
  were reused run first, quietly, so that it finds the names they made. A
  block that fails is never stored: it fails again, and the strict build
  with it.
- the executed notebook's page (mkdocs-jupyter's own cache, in a folder keyed
  by the code the notebooks import and the packages' versions), emptied when
  a cache entry the notebooks' kernels read holds something else now (an
  experiment measured again); entries they never read do not count.

Outputs live in `<cache>/site/`, stored by key, so that reverting an edit or
switching branches back finds them again; `learnjax cache prune` removes those
the last build did not use (`site/used.json`). The notebook's kernel talks to
the build over Unix sockets (IPC) where the system has them, instead of
unencrypted TCP on the loopback.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import markdown_exec
from markdown_exec import base_format
from markdown_exec._internal.formatters.python import _run_python  # markdown-exec's way of running a block

# --8<-- [start:settings]
# The project's settings: a copy of this hook in another project edits these lines only.
# write_text(path, text): the whole file or nothing.
from learnjax.files.atomic import write_text
# cache.PACKAGE: the package's folder; cache.MACHINERY: modules counted by code alone.
from learnjax.storage import cache
# The cache's folder (~/.cache/learnjax or $LEARNJAX_CACHE) and folder names in it.
from learnjax.storage.cache import SITE_OUTPUTS, SITE_USED, cache_root
# A hash of the code of named package modules and of extra source.
from learnjax.storage.cache import code_version
# The results a block read, and whether they still hold the same content.
from learnjax.storage.cache import entries_read, still_hold
# The package's import graph, read with ast; its files read once while a build runs.
from learnjax.storage.code_graph import files_held, import_graph, imports_of

# The packages that draw the outputs: a new version runs every block again.
PACKAGES = ("jax", "flax", "optax", "numpy", "matplotlib", "markdown-exec",
            "mkdocs-jupyter", "nbconvert")
ROOT = Path(__file__).resolve().parents[3]  # the repository: three levels up
# --8<-- [end:settings]

JUPYTER_CONFIG = Path(__file__).parent / "jupyter"  # KernelManager.transport = "ipc"
READS = "reads.jsonl"  # in a notebooks folder: the entries its kernels read, one per line
NOTEBOOKS = (".py", ".ipynb")  # the pages mkdocs-jupyter runs (`include` in mkdocs.yml)


@functools.cache  # asked for at every block
def versions() -> list[str]:
    return [f"{name}=={version(name)}" for name in PACKAGES]


def local_modules(source: str, root: Path = ROOT) -> list[Path]:
    """The repository's own Python files (outside the package) that `source`
    imports, transitively: `from benchmarks.performance import measured`."""
    found: list[Path] = []
    todo = [source]
    while todo:
        for node in ast.walk(ast.parse(todo.pop())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                for path in (root / f"{name.replace('.', '/')}.py", root / name.replace(".", "/") / "__init__.py"):
                    if path.is_file() and path not in found and not path.is_relative_to(cache.PACKAGE):
                        found.append(path)
                        todo.append(path.read_text(encoding="utf-8"))
    return found


class BlockCode(NamedTuple):
    """What one block's source runs: the package modules it imports (itself and
    through the repository's own modules it imports), and a hash of its code and theirs."""

    imported: frozenset[str]
    digest: str


def block_code(source: str) -> BlockCode:
    local = local_modules(source)
    texts = [path.read_text(encoding="utf-8") for path in local]
    imported = frozenset(imports_of(source, cache.PACKAGE)).union(*(imports_of(text, cache.PACKAGE) for text in texts))
    return BlockCode(imported, code_version((), "\n".join([source, *texts])))


def code_key(sources: list[str], known: dict[str, BlockCode] | None = None) -> str:
    """A hash of the code that `sources` run: theirs, the package modules they
    import (transitively; the entries they read through the cache count by
    content instead), and the repository's own modules they import. `known`
    keeps each source's part, worked out once (a session's blocks share their
    predecessors)."""
    known = {} if known is None else known
    try:
        parts = [known[source] if source in known else known.setdefault(source, block_code(source)) for source in sources]
    except SyntaxError:  # it fails when run, and is never stored
        return hashlib.sha256("\n".join(sources).encode()).hexdigest()[:16]
    imported = frozenset().union(*(part.imported for part in parts))
    graph = import_graph(cache.PACKAGE)
    modules = graph.closure(imported, stop_at=cache.MACHINERY)
    # A block may show what the cache's own code says (`learnjax cache graph`): its code counts, not what it imports.
    modules |= {m for m in cache.MACHINERY if m in imported or any(m in graph.edges[n] for n in modules)}
    return hashlib.sha256(json.dumps([code_version(modules), *(part.digest for part in parts)]).encode()).hexdigest()[:16]


def notebooks_key(docs: Path) -> str:
    """The notebooks' code (every Python file among the pages) and the packages' versions."""
    sources = [path.read_text(encoding="utf-8") for path in sorted(docs.rglob("*.py")) if "overrides" not in path.parts]
    return hashlib.sha256(json.dumps([code_key(sources), *versions()]).encode()).hexdigest()[:16]


def notebooks_folder(key: str) -> Path:
    """`<cache>/site/notebooks/<key>/`, emptied unless every cache entry that the
    notebooks' kernels read when they last ran (`READS`, which they append to:
    `cache.READS_LOG`) still holds what it held then."""
    folder = cache_root() / SITE_OUTPUTS / "notebooks" / key
    reads = folder / READS
    if folder.exists() and not (reads.exists() and still_hold(_read_lines(reads))):
        shutil.rmtree(folder, ignore_errors=True)
    if not folder.exists():
        folder.mkdir(parents=True)
        reads.touch()  # a notebook that reads no entry runs once
    return folder


def _read_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        return [{"entry": "unreadable", "content": None}]  # holds nothing: run again


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(data))


class BlockOutputs:
    """The executed blocks' outputs, each stored under its key (`<folder>/<key>.json`) with the
    cache entries it read; the keys a build used are listed in `used`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.page = None
        self.used: set[str] = set()

    def start_page(self, page: str) -> None:
        self.page = page
        self.sessions: dict[str, list[str]] = {}  # session -> sources run or reused so far on this page
        self.known: dict[str, BlockCode] = {}  # each source's part of the code keys, on this page
        self.skipped: dict[str, list[dict]] = {}  # session -> reused blocks not run since

    def end_page(self) -> None:
        self.page = None

    def _stored(self, key: str) -> str | None:
        """The output stored under `key`, if the entries it read still hold what they held."""
        try:
            stored = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return stored["output"] if still_hold(stored["reads"]) else None

    def format_python(self, **options) -> str:
        """markdown-exec's Python formatter, with each block's output reused when its key is stored."""
        if self.page is None:  # outside a page (not expected): no reuse
            return base_format(language="python", run=_run_python, **options)
        session = options.get("session")
        history = self.sessions.setdefault(session, []) if session else []
        settings = {name: value for name, value in options.items() if name != "md"}
        sources = [*history, options["code"]]
        key = hashlib.sha256(json.dumps([settings, history, code_key(sources, self.known), *versions()], default=str,
                                        sort_keys=True).encode()).hexdigest()
        history.append(options["code"])
        self.used.add(key)
        output = self._stored(key)
        if output is not None:
            if session:
                self.skipped.setdefault(session, []).append(options)
            return base_format(language="python", run=lambda *args, **kwargs: output, **options)

        def run(code, **kwargs):
            for earlier in self.skipped.pop(session, []) if session else []:
                _run_python(earlier["code"], returncode=earlier.get("returncode"), session=session,
                            id=earlier.get("id"), **earlier.get("extra", {}))
            with entries_read() as reads:
                output = _run_python(code, **kwargs)
            _write(self.folder / f"{key}.json", {"output": output, "reads": reads})  # only reached when the block ran without error
            return output

        return base_format(language="python", run=run, **options)


outputs: BlockOutputs | None = None
held = contextlib.ExitStack()  # the package's files, held unchanged from the start of a build to its end


notebooks: Path | None = None


def on_config(config):
    global outputs, notebooks
    outputs = BlockOutputs(cache_root() / SITE_OUTPUTS / "blocks")
    markdown_exec.formatters["python"] = outputs.format_python
    notebooks = notebooks_folder(notebooks_key(Path(config.docs_dir)))
    plugin = next(p for p in config.plugins.values() if type(p).__module__.startswith("mkdocs_jupyter"))
    plugin.config["cache"] = True
    plugin.config["cache_dir"] = str(notebooks)
    if os.name == "posix":  # zmq's IPC transport needs Unix sockets
        paths = [str(JUPYTER_CONFIG), *filter(None, os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep))]
        os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return config


def on_pre_build(config):
    held.close()  # a build that failed before its end
    held.enter_context(files_held())


def on_build_error(error):
    held.close()


def on_page_markdown(markdown, page, config, files):
    outputs.start_page(page.file.src_uri)
    if page.file.src_uri.endswith(NOTEBOOKS):  # its kernel, started while it renders, inherits the variable
        os.environ[cache.READS_LOG] = str(notebooks / READS)
    return markdown


def on_page_content(html, page, config, files):
    outputs.end_page()
    os.environ.pop(cache.READS_LOG, None)  # the pages' own blocks count their reads themselves
    return html


def on_post_build(config):
    held.close()
    used = [f"blocks/{key}.json" for key in sorted(outputs.used)] + [notebooks.relative_to(cache_root() / SITE_OUTPUTS).as_posix()]
    _write(cache_root() / SITE_OUTPUTS / SITE_USED, used)
