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


def test_the_decode_profile_s_ablation_changes_the_traced_loop_and_is_undone():
    import numpy as np

    from benchmarks import decode_profile
    from learnjax.models.transformer import KVCache

    write = KVCache.write
    shipped = decode_profile.variant(decode_profile.MAX_LEN)
    without_writes = decode_profile.variant(decode_profile.MAX_LEN, decode_profile.cache_writes_left_out)
    assert KVCache.write is write  # undone once traced
    assert not np.array_equal(shipped(), without_writes())  # the variant really reads an empty cache
    np.testing.assert_array_equal(shipped(), decode_profile.variant(decode_profile.MAX_LEN)())  # and the shipped loop is untouched
