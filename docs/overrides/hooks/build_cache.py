"""Fast rebuilds: what the pages and the notebook computed is reused until it could change.

A build runs every executed block of every page and the whole notebook again,
although a one-line edit of the prose changes none of their output. This hook
keeps both in the learnjax cache, under a key of the library's code (as the
experiments are) and of the versions of the packages that draw the output:

- each executed Python block's output (markdown-exec), under its source and
  the sources of the blocks before it in its session. When one block of a
  session must run again, the blocks before it that were reused run first,
  quietly, so that it finds the names they made. A block that fails is never
  stored: it fails again, and the strict build with it.
- the executed notebook's page (mkdocs-jupyter's own cache, in a folder of
  this key).

Both live in `<cache>/site/<key>/`, emptied when an entry of the learnjax
cache changed since the last build (an experiment deleted to measure it
again); folders of other keys are removed. The
notebook's kernel talks to the build over Unix sockets (IPC) where the system
has them, instead of unencrypted TCP on the loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import markdown_exec
from markdown_exec import base_format
from markdown_exec._internal.formatters.python import _run_python  # markdown-exec's way of running a block

import learnjax
from learnjax.atomic import write_text
from learnjax.cache import cache_root, code_version

PACKAGES = ("jax", "flax", "optax", "numpy", "matplotlib", "markdown-exec", "mkdocs-jupyter", "nbconvert")
JUPYTER_CONFIG = Path(__file__).parent / "jupyter"  # KernelManager.transport = "ipc"
ROOT = Path(__file__).resolve().parents[3]  # the repository: docs/overrides/hooks/ is three levels down
ENTRIES = "cache-entries.json"  # the cache's entries when the last build ended


def build_key() -> str:
    """The library's code, the measuring code the Performance page runs, and the packages' versions."""
    modules = tuple(sorted(path.stem for path in Path(learnjax.__file__).parent.glob("*.py")))
    benchmarks = "".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "benchmarks").glob("*.py")))
    versions = [f"{name}=={version(name)}" for name in PACKAGES]
    return hashlib.sha256(json.dumps([code_version(modules, benchmarks), *versions]).encode()).hexdigest()[:16]


def cache_entries() -> list[list]:
    """What the pages read from the learnjax cache (experiments, the foundation model): each entry's name and time."""
    return sorted([p.name, p.stat().st_mtime_ns] for p in cache_root().glob("*")
                  if p.name not in ("site", "xla") and not p.name.endswith((".lock", ".tmp")))


def build_cache_folder(key: str) -> Path:
    """`<cache>/site/<key>/`, emptied when the cache's entries changed since the last build (an
    experiment deleted to measure it again); the folders of other keys, never read again, removed."""
    site = cache_root() / "site"
    for stale in site.glob("*"):
        if stale.name != key:
            shutil.rmtree(stale, ignore_errors=True)
    folder = site / key
    entries = folder / ENTRIES
    if entries.exists() and json.loads(entries.read_text(encoding="utf-8")) != cache_entries():
        shutil.rmtree(folder, ignore_errors=True)
    return folder


def remember_cache_entries(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ENTRIES).write_text(json.dumps(cache_entries()), encoding="utf-8")


class BlockOutputs:
    """The executed blocks' outputs of one page: read when the page starts, written when it ends,
    keeping only the outputs this render used, so that the file never grows with edits."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.page = None

    def start_page(self, page: str) -> None:
        self.page = page
        path = self._path()
        self.stored = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self.used: dict[str, str] = {}
        self.sessions: dict[str, list[str]] = {}  # session -> sources run or reused so far on this page
        self.skipped: dict[str, list[dict]] = {}  # session -> reused blocks not run since

    def end_page(self) -> None:
        if self.page is not None and self.used != self.stored:
            path = self._path()
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(self.used))
        self.page = None

    def _path(self) -> Path:
        return self.folder / "pages" / (hashlib.sha256(self.page.encode()).hexdigest()[:16] + ".json")

    def format_python(self, **options) -> str:
        """markdown-exec's Python formatter, with each block's output reused when its key is stored."""
        if self.page is None:  # outside a page (not expected): no reuse
            return base_format(language="python", run=_run_python, **options)
        session = options.get("session")
        history = self.sessions.setdefault(session, []) if session else []
        settings = {name: value for name, value in options.items() if name != "md"}
        key = hashlib.sha256(json.dumps([settings, history], default=str, sort_keys=True).encode()).hexdigest()
        history.append(options["code"])
        if key in self.stored:
            self.used[key] = self.stored[key]
            if session:
                self.skipped.setdefault(session, []).append(options)
            return base_format(language="python", run=lambda *args, **kwargs: self.used[key], **options)

        def run(code, **kwargs):
            for earlier in self.skipped.pop(session, []) if session else []:
                _run_python(earlier["code"], returncode=earlier.get("returncode"), session=session,
                            id=earlier.get("id"), **earlier.get("extra", {}))
            output = _run_python(code, **kwargs)
            self.used[key] = output  # only reached when the block ran without error
            return output

        return base_format(language="python", run=run, **options)


outputs: BlockOutputs | None = None


def on_config(config):
    global outputs
    folder = build_cache_folder(build_key())
    outputs = BlockOutputs(folder)
    markdown_exec.formatters["python"] = outputs.format_python
    notebooks = next(p for p in config.plugins.values() if type(p).__module__.startswith("mkdocs_jupyter"))
    notebooks.config["cache"] = True
    notebooks.config["cache_dir"] = str(folder / "notebooks")
    if os.name == "posix":  # zmq's IPC transport needs Unix sockets
        paths = [str(JUPYTER_CONFIG), *filter(None, os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep))]
        os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return config


def on_page_markdown(markdown, page, config, files):
    outputs.start_page(page.file.src_uri)
    return markdown


def on_page_content(html, page, config, files):
    outputs.end_page()
    return html


def on_post_build(config):
    remember_cache_entries(outputs.folder)
