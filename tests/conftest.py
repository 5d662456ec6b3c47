"""Fixtures shared by the site tests, and the fuzzed readers' example counts in the run's summary."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"


@dataclass(frozen=True)
class SiteBuild:
    site: Path  # the built site
    temp: Path  # the build's temporary folder (TMPDIR), to see what it leaves behind


@pytest.fixture(scope="session")
def site_build(tmp_path_factory) -> SiteBuild:
    """Builds the site with `mkdocs build --strict` into site/ (which CI publishes), once per session."""
    temp = tmp_path_factory.mktemp("build-temp")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(SITE)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "TMPDIR": str(temp)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return SiteBuild(SITE, temp)


@pytest.fixture(scope="session")
def built_site(site_build) -> Path:
    return site_build.site


def pytest_terminal_summary(terminalreporter):
    """The examples each fuzzed reader ran (tests/test_fuzz_readers.py), also from xdist's workers."""
    lines = [value for report in terminalreporter.stats.get("passed", []) for key, value in report.user_properties if key == "fuzz"]
    if lines:
        terminalreporter.write_sep("-", "fuzzed readers")
        for line in sorted(lines):
            terminalreporter.write_line(line)
