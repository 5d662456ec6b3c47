"""A benchmark opened as a file runs as it does as a module."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_steps_runs_as_a_file_from_any_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # the library, not the repository root
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_steps.py"), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout
