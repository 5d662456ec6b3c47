"""The time budget: the strict site build and the README's test command, each
with an empty learnjax cache (cold) and again with the cache it filled (warm),
and where a cold run's time goes, entry by entry.

    python -m benchmarks.cold_build                  # all four, about 10 minutes
    python -m benchmarks.cold_build --only build     # the two builds

Budgets on the 2-core machine the project is developed on: the build at most
180 s cold and 60 s warm; the tests at most 240 s cold and 120 s warm. Each
run gets a cache folder of its own (LEARNJAX_CACHE), so nothing from an earlier
run is reused; the figures of each cold run's cache entries come from the
records the cache writes (`seconds` of each computation). The machine load
from other processes during each run is printed beside it, since a busy
machine stretches every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import timing

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = {("build", "cold"): 180, ("build", "warm"): 60, ("tests", "cold"): 240, ("tests", "warm"): 120}
COMMANDS = {
    "build": [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir"],
    "tests": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
}


def run(what: str, cache: Path, site: Path) -> dict:
    command = COMMANDS[what] + ([str(site)] if what == "build" else [])
    env = {**os.environ, "LEARNJAX_CACHE": str(cache), "NO_MKDOCS_2_WARNING": "1"}
    with timing.other_processes_load() as load:
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    tail = (done.stdout + done.stderr).strip().splitlines()[-1:] if done.returncode else []
    return {"seconds": seconds, "ok": done.returncode == 0, "other_load": load.get("cores"), "tail": tail}


def entries(cache: Path) -> list[tuple[str, float]]:
    """(kind, seconds to compute) of every entry the run computed, slowest first."""
    found = []
    for record in cache.glob("*.record.json"):
        data = json.loads(record.read_text(encoding="utf-8"))
        if data.get("seconds") is not None:
            label = data["kind"] if data["kind"] != "foundation" else f"foundation ({data['params'].get('objective', 'masked')}"
            if data["kind"] == "foundation":
                label += ", FAQ" if data["params"].get("faq_share") else ""
                label += ")"
            found.append((label, data["seconds"]))
    return sorted(found, key=lambda e: -e[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["build", "tests"], help="measure one of the two")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="learnjax-cold-") as folder:
        for what in ([args.only] if args.only else ["build", "tests"]):
            cache = Path(folder) / f"cache-{what}"
            for state in ("cold", "warm"):
                print(f"{what}, {state} cache ...", file=sys.stderr, flush=True)
                results[what, state] = run(what, cache, Path(folder) / "site")
                if state == "cold":
                    results[what, "entries"] = entries(cache)
    print(f"\n{'run':<14} {'seconds':>8} {'budget':>7}  {'other load':>10}")
    for (what, state), budget in BUDGETS.items():
        if (what, state) in results:
            r = results[what, state]
            load = f"{r['other_load']:.2f} cores" if r["other_load"] is not None else "unknown"
            status = "" if r["ok"] else f"  FAILED: {r['tail']}"
            over = "" if r["seconds"] <= budget else "  over"
            print(f"{what + ', ' + state:<14} {r['seconds']:>8.0f} {budget:>7}  {load:>10}{over}{status}")
    for what in ("build", "tests"):
        if (what, "entries") in results:
            print(f"\nwhere the cold {what} computed (each entry once, one at a time):")
            total = 0.0
            for label, seconds in results[what, "entries"]:
                total += seconds
                print(f"  {label:<40} {seconds:>7.1f} s")
            print(f"  {'all entries':<40} {total:>7.1f} s of {results[what, 'cold']['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
