"""Peak memory and reading time of `learnjax pretrain --corpus` on a large text file.

    python benchmarks/corpus_memory.py [--mb 100] [--tiny-mb 0.1] [--src DIR]

Writes a synthetic corpus of `--mb` MiB (texts from the built-in corpus
generator, `learnjax.data.corpus.iter_corpus`, one per line; nothing is downloaded)
and a tiny one of `--tiny-mb`, then runs `learnjax pretrain --corpus FILE
--steps 1 --json` on each in a fresh process. For each it prints the child's
peak resident memory (`ru_maxrss`, from `os.wait4`), wall time and CPU time;
then what the large corpus adds over the tiny one, as a multiple of its text
size, and the extra time, which is the time spent reading and encoding the
extra text (both runs compile and train the same way). On a busy machine the
CPU time is the steadier of the two.

`--src DIR` runs the library found in DIR (a `src` folder) instead of this
checkout's, e.g. an export of an older commit to compare against:
`git archive COMMIT src | tar -x -C /tmp/old` and `--src /tmp/old/src`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 2**20  # MiB, as ru_maxrss (KiB) / 1024


def write_corpus(path: Path, megabytes: float, seed: int) -> tuple[int, int]:
    """Writes texts of the built-in corpus, one per line, until the file holds
    `megabytes` MiB. Returns (bytes, lines)."""
    from learnjax.data.corpus import iter_corpus

    target, size, lines = int(megabytes * MIB), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        for text in iter_corpus(10**12, seed):
            line = text + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            lines += 1
            if size >= target:
                break
    return size, lines


def run_pretrain(corpus: Path, out: Path, src: Path) -> tuple[float, float, float]:
    """Peak RSS (MiB), wall seconds and CPU seconds of one `learnjax pretrain` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "learnjax.cli", "pretrain", "--corpus", str(corpus), "--steps", "1", "--json", "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode(errors="replace").strip()
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"pretrain on {corpus} failed ({child.returncode}): {error.splitlines()[-1] if error else ''}")
    return usage.ru_maxrss * 1024 / MIB, seconds, usage.ru_utime + usage.ru_stime  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100, help="size of the large corpus in MiB (default 100)")
    parser.add_argument("--tiny-mb", type=float, default=0.1, help="size of the baseline corpus in MiB (default 0.1)")
    parser.add_argument("--src", type=Path, default=HERE.parent / "src", help="the library's src folder to run")
    args = parser.parse_args()
    sys.path.insert(0, str(args.src))

    with tempfile.TemporaryDirectory(prefix="corpus-memory-") as tmp:
        tmp = Path(tmp)
        rows = []
        for name, megabytes in (("tiny", args.tiny_mb), ("large", args.mb)):
            corpus = tmp / f"{name}.txt"
            size, lines = write_corpus(corpus, megabytes, seed=1)
            peak, seconds, cpu = run_pretrain(corpus, tmp / f"{name}-model", args.src)
            rows.append((size, peak, seconds, cpu))
            print(f"{name:>5}: {size / MIB:8.1f} MiB of text, {lines:>9,} lines: peak RSS {peak:7.0f} MiB, "
                  f"{seconds:6.1f} s wall, {cpu:6.1f} s CPU", flush=True)

    (tiny_size, tiny_peak, tiny_seconds, tiny_cpu), (size, peak, seconds, cpu) = rows
    extra_text = (size - tiny_size) / MIB
    extra_peak = peak - tiny_peak
    print(f"extra: {extra_peak:.0f} MiB of memory for {extra_text:.1f} MiB of text = {extra_peak / extra_text:.2f}x the text size")
    print(f"extra time (reading and encoding the text): {seconds - tiny_seconds:.1f} s wall, {cpu - tiny_cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
