"""The browser's visit of every page, kept while nothing it depends on changes.

Visiting, screenshotting and auditing every page is the costliest test
set-up, and its findings follow from what the browser is given: the built
site's bytes, the browser, the audit's engine and the test code that drives
them. So a visit is stored under a key of all of
those, and a later session whose key is the same reads the findings and the
screenshots back instead of visiting again; any change to one byte of the site,
to Chromium, Playwright, axe or the browser tests visits every page again.

A visit is stored only when every test of its session (its pytest process,
which runs all the site's tests) passed, so a failure, even a flaky one, is
never read back. Only the newest visit is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from learnjax.storage.cache import PAGE_VISITS, cache_root

FORMAT = 1  # bumped when what is stored changes shape
REPORTS = "reports.json"


def _tree_digest(folder: Path) -> str:
    """A hash of every file under `folder`: its path and its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _browser_version(executable: Path) -> str:
    """The browser's own version line, and its file's size and time: a rebuilt
    package of the same version counts as another browser."""
    line = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    info = executable.resolve().stat()
    return f"{line} {info.st_size} {info.st_mtime_ns}"


def visit_key(site: Path, browser: Path, test_files: list[Path]) -> str:
    """The key of a visit of `site` in the browser at `browser`, by the tests in `test_files`."""
    parts = {
        "format": FORMAT,
        "site": _tree_digest(site),
        "browser": _browser_version(browser),
        "packages": {name: metadata.version(name) for name in ("playwright", "axe-playwright-python")},
        "tests": {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in test_files},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _folder(key: str) -> Path:
    return cache_root() / PAGE_VISITS / key


def read_visit(key: str, report_type: type, screenshots: Path) -> list[Any] | None:
    """The reports of the visit stored under `key`, its screenshots copied into
    `screenshots`; None when there is none (or it cannot be read)."""
    folder = _folder(key)
    try:
        rows = json.loads((folder / REPORTS).read_text(encoding="utf-8"))
        reports = []
        for row in rows:
            shot = screenshots / row["screenshot"]
            shutil.copyfile(folder / row["screenshot"], shot)
            reports.append(report_type(**{**row, "screenshot": shot}))
        return reports
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_visit(key: str, reports: list[Any]) -> None:
    """Stores `reports` and their screenshots under `key`, whole or not at all,
    in place of any earlier visit."""
    parent = cache_root() / PAGE_VISITS
    parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=parent, prefix=".incomplete-"))
    try:
        rows = []
        for report in reports:
            row = dataclasses.asdict(report)
            row["screenshot"] = report.screenshot.name
            shutil.copyfile(report.screenshot, temporary / report.screenshot.name)
            rows.append(row)
        (temporary / REPORTS).write_text(json.dumps(rows), encoding="utf-8")
        for old in parent.iterdir():
            if old != temporary:
                shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(OSError):  # another session stored the same visit meanwhile
            temporary.rename(_folder(key))
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
