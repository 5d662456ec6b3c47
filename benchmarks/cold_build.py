"""The time budget, relative: this tree's strict site build and test command
against a reference commit's, side by side on one machine in one sitting.

    python -m benchmarks.cold_build                       # builds and warm tests, about an hour on 2 cores
    python -m benchmarks.cold_build --only build          # the builds
    python -m benchmarks.cold_build --only cold           # the cold builds alone, about 20 minutes
    python -m benchmarks.cold_build --with-cold-tests     # also the test command with an empty cache
    python -m benchmarks.cold_build --against REV --json out.json
    python -m benchmarks.cold_build --dry-run             # the commands, not run

Seconds differ from machine to machine, so the budgets are ratios:

- cold strict build: at most 1.25x the reference's cold build;
- the build after a one-line code change to the sampler: at most 0.35x the
  same tree's cold build; after one to the command line: at most 0.05x;
- the warm test command: at most 0.5x the reference's; the cold one: 1.25x.

The reference is exported with `git archive` into a temporary folder. Each
measurement runs for both trees in turn (reference, then current), so a burst
of load from other processes slows both alike; the load is printed beside each
run. Each tree imports its own library (PYTHONPATH=<tree>/src, the same
virtual environment) and each cold run starts from a cache folder of its own
(LEARNJAX_CACHE). The one-line change is a `pass` added to a function the
sampler (or the command line) runs: the cache keys see it, the results do not.
It is undone, byte for byte, before the next figure, also when a run breaks
off. Where each cold build's time went comes from the cache's records
(`seconds` of each computation). Beside wall seconds each run's CPU seconds
(its own and its children's) are printed, with their ratio: on a machine that
other work shares, CPU seconds move much less than wall seconds, so where the
two ratios disagree the CPU one is the better guide.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

if __package__ in (None, ""):  # opened as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import timing
from learnjax.storage.cache import entry_label

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "caf4fde"
TREES = ("reference", "current")
BUILD = ["-m", "mkdocs", "build", "--strict", "--site-dir"]
TESTS = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]  # the README's command; no .pytest_cache left in the tree

# Where the one-line change goes, in the layout of either commit: the first
# file that exists, and a function in it that the sampler (the command line) runs.
CHANGES = {
    "sampler": (("src/learnjax/models/generation.py", "generate"), ("src/learnjax/generation.py", "generate")),
    "CLI": (("src/learnjax/cli/__init__.py", "main"), ("src/learnjax/cli.py", "main")),
}


@dataclasses.dataclass(frozen=True)
class Budget:
    figure: str
    limit: float | None  # None: measured and shown, not budgeted
    of: str  # "reference": current / reference; "cold build": each tree's seconds / its own cold build


BUDGETS = (
    Budget("build cold", 1.25, "reference"),
    Budget("build warm", None, "reference"),
    Budget("build after a sampler change", 0.35, "cold build"),
    Budget("build after undoing it", None, "cold build"),
    Budget("build after a CLI change", 0.05, "cold build"),
    Budget("tests cold", 1.25, "reference"),
    Budget("tests filling the build's cache", None, "reference"),
    Budget("tests warm", 0.5, "reference"),
)


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing to do to one tree: run a command (`action` "run"), or apply or
    undo the one-line change named by `figure` ("change", "undo")."""

    action: str
    tree: str
    figure: str
    command: tuple[str, ...] = ()
    cache: str = ""  # the cache folder's name, under the run's temporary folder
    split: bool = False  # record where the time went, from the cache's records

    def describe(self, folders: dict[str, str], scratch: str, targets: dict[tuple[str, str], tuple[str, str]]) -> str:
        if self.action != "run":
            path, function = targets[self.tree, self.figure]
            verb = "add `pass` to" if self.action == "change" else "restore"
            return f"[{self.tree}] {verb} {function}() in {folders[self.tree]}/{path}"
        command = shlex.join(self.command).replace("{scratch}", scratch)
        return f"[{self.tree}] {self.figure}: cd {folders[self.tree]} && PYTHONPATH={folders[self.tree]}/src LEARNJAX_CACHE={scratch}/{self.cache} {command}"


def plan(only: str | None, with_cold_tests: bool) -> list[Step]:
    """Every step, in order; each figure for the reference, then the current tree."""
    steps: list[Step] = []

    def both(figure: str, what: str, cache: str, split: bool = False) -> None:
        for tree in TREES:
            args = [*BUILD, f"{{scratch}}/{tree}-site"] if what == "build" else TESTS
            steps.append(Step("run", tree, figure, (sys.executable, *args), f"{tree}-{cache}", split))

    def changed(name: str, figure: str) -> None:
        steps.extend(Step("change", tree, name) for tree in TREES)
        both(figure, "build", "build")
        steps.extend(Step("undo", tree, name) for tree in TREES)

    if only == "cold":
        both("build cold", "build", "build", split=True)
    if only in (None, "build"):
        both("build cold", "build", "build", split=True)
        both("build warm", "build", "build")
        changed("sampler", "build after a sampler change")
        both("build after undoing it", "build", "build")
        changed("CLI", "build after a CLI change")
    if only in (None, "tests"):
        if with_cold_tests:
            both("tests cold", "tests", "tests", split=True)
        else:  # the build's cache (or an empty one) filled by a first run
            both("tests filling the build's cache", "tests", "build" if only is None else "tests")
        both("tests warm", "tests", "tests" if with_cold_tests or only else "build")
    return steps


def change_target(has_file: Callable[[str], bool], name: str) -> tuple[str, str]:
    """(file, function) of the one-line change `name` in the layout of the tree
    that `has_file` (a path relative to its root) looks in."""
    for path, function in CHANGES[name]:
        if has_file(path):
            return path, function
    raise SystemExit(f"error: no file for the {name} change: none of {[p for p, _ in CHANGES[name]]}")


def with_pass(source: str, function: str) -> str:
    """`source` with one `pass` statement added to the body of its top-level
    function `function` (after the docstring): a code change that the cache's
    keys (the syntax tree without docstrings) see and that changes no result."""
    found = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function]
    if not found:
        raise SystemExit(f"error: no function {function!r} to change")
    body = found[0].body
    first = body[0]
    if first.lineno == found[0].lineno:
        raise SystemExit(f"error: {function!r} has its body on the line of its `def`; cannot add a line to it")
    is_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    lines = source.splitlines(keepends=True)
    at = first.end_lineno if is_docstring else first.lineno - 1
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    return "".join([*lines[:at], " " * first.col_offset + "pass" + newline, *lines[at:]])


class Changes:
    """The one-line changes made so far, each undone by `undo` or, for any left,
    by `undo_all`: the files come back byte for byte."""

    def __init__(self) -> None:
        self.originals: dict[Path, bytes] = {}

    def apply(self, tree: Path, name: str) -> Path:
        path, function = change_target(lambda p: (tree / p).is_file(), name)
        file = tree / path
        original = file.read_bytes()
        changed = with_pass(original.decode("utf-8"), function).encode("utf-8")
        self.originals[file] = original
        file.write_bytes(changed)
        return file

    def undo(self, tree: Path, name: str) -> None:
        file = tree / change_target(lambda p: (tree / p).is_file(), name)[0]
        file.write_bytes(self.originals.pop(file))

    def undo_all(self) -> None:
        while self.originals:
            file, original = self.originals.popitem()
            file.write_bytes(original)


def run_command(command: list[str], cwd: Path, env: dict[str, str]) -> dict:
    """Seconds, CPU seconds (the command's and its children's), success, the
    cores other processes kept busy meanwhile, and on failure the last lines of
    output (and a missing module, named)."""
    with timing.other_processes_load() as load:
        started, cpu = time.perf_counter(), children_cpu_seconds()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - started, children_cpu_seconds() - cpu
    result = {"seconds": seconds, "cpu_seconds": cpu, "ok": done.returncode == 0, "other_load": load.get("cores")}
    if done.returncode:
        output = done.stdout + done.stderr
        result["tail"] = output.strip().splitlines()[-3:]
        named = set(re.findall(r"No module named '([^']+)'", output))
        missing = sorted(name for name in named if name.split(".")[0] not in ("learnjax", "benchmarks"))  # dependencies, not the tree's own
        if missing:
            result["missing"] = missing
    return result


def children_cpu_seconds() -> float:
    """CPU seconds of the child processes this one has waited for (and theirs)."""
    import resource  # Unix only, as the rest of the timing

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def entries(cache: Path) -> list[tuple[str, float]]:
    """(kind, seconds to compute) of every entry the run computed, slowest first."""
    found = []
    for record in cache.glob("*.record.json"):
        data = json.loads(record.read_text(encoding="utf-8"))
        seconds = data.get("own_seconds", data.get("seconds"))  # less the entries computed inside it
        if seconds is not None:
            found.append((entry_label(data["kind"], data.get("params") or {}), seconds))
    tuned = [seconds for label, seconds in found if label == "tuned"]  # the lessons' many fine-tuned models: one line
    found = [e for e in found if e[0] != "tuned"] + ([(f"tuned ({len(tuned)} models)", sum(tuned))] if tuned else [])
    return sorted(found, key=lambda e: -e[1])


def execute(steps: list[Step], folders: dict[str, Path], scratch: Path,
            runner: Callable[[list[str], Path, dict[str, str]], dict] = run_command) -> dict:
    """Runs `steps`; returns {"runs": [...], "figures": {tree: {figure: seconds or None}},
    "cpu": {tree: {figure: CPU seconds or None}}, "split": {tree: {figure: entries}}}.
    Every change is undone on the way out."""
    results: dict = {"runs": [], "figures": {tree: {} for tree in TREES}, "cpu": {tree: {} for tree in TREES},
                     "split": {tree: {} for tree in TREES}}
    changes = Changes()
    try:
        for step in steps:
            tree = folders[step.tree]
            if step.action == "change":
                changes.apply(tree, step.figure)
                continue
            if step.action == "undo":
                changes.undo(tree, step.figure)
                continue
            cache = scratch / step.cache
            command = [part.replace("{scratch}", str(scratch)) for part in step.command]
            env = {**os.environ, "PYTHONPATH": str(tree / "src"), "LEARNJAX_CACHE": str(cache), "NO_MKDOCS_2_WARNING": "1"}
            print(f"{step.tree}: {step.figure} ...", file=sys.stderr, flush=True)
            run = runner(command, tree, env)
            results["runs"].append({"tree": step.tree, "figure": step.figure, **run})
            results["figures"][step.tree][step.figure] = run["seconds"] if run["ok"] else None
            results["cpu"][step.tree][step.figure] = run.get("cpu_seconds") if run["ok"] else None
            if step.split:
                results["split"][step.tree][step.figure] = entries(cache)
    finally:
        changes.undo_all()
    return results


def ratio(figures: dict[str, dict[str, float | None]], budget: Budget, tree: str) -> float | None:
    """`tree`'s figure over the reference's same figure, or over its own cold
    build, as `budget` says; None where a run it needs failed or is missing."""
    seconds = figures.get(tree, {}).get(budget.figure)
    over = figures.get(tree if budget.of == "cold build" else "reference", {}).get("build cold" if budget.of == "cold build" else budget.figure)
    return seconds / over if seconds is not None and over else None


def verdicts(figures: dict[str, dict[str, float | None]], cpu: dict[str, dict[str, float | None]] | None = None) -> list[dict]:
    """One row per budgeted figure measured for either tree: both trees' seconds,
    the ratio the budget is about, the budget, and "holds", "over", "failed"
    (a run failed) or "" (not budgeted); with `cpu` (CPU seconds of the same
    runs) also the same ratio of CPU seconds ("cpu_ratio") and its verdict."""
    rows = []
    for budget in BUDGETS:
        seconds = {tree: figures.get(tree, {}).get(budget.figure) for tree in TREES}
        if all(budget.figure not in figures.get(tree, {}) for tree in TREES):
            continue

        row = {"figure": budget.figure, **seconds, "ratio": ratio(figures, budget, "current"), "budget": budget.limit, "of": budget.of,
               "reference_ratio": ratio(figures, budget, "reference") if budget.of == "cold build" else None}
        row["verdict"] = verdict(row["ratio"], budget)
        if cpu is not None:
            row["cpu_ratio"] = ratio(cpu, budget, "current")
            row["cpu_verdict"] = verdict(row["cpu_ratio"], budget)
        rows.append(row)
    return rows


def verdict(value: float | None, budget: Budget) -> str:
    if value is None:
        return "failed"
    return "" if budget.limit is None else "holds" if value <= budget.limit else "over"


def table(rows: list[dict]) -> str:
    seconds = lambda s: "failed" if s is None else f"{s:.0f}"
    times = lambda r: "" if r is None else f"{r:.2f}x"
    lines = [f"{'figure':<34} {'reference s':>11} {'current s':>9} {'ratio':>7} {'budget':>22}  verdict  {'CPU ratio':>9}  CPU verdict"]
    for row in rows:
        budget = "" if row["budget"] is None else f"<= {row['budget']:.2f}x {'reference' if row['of'] == 'reference' else 'own cold'}"
        line = f"{row['figure']:<34} {seconds(row['reference']):>11} {seconds(row['current']):>9} {times(row['ratio']):>7} {budget:>22}  {row['verdict']:<7}"
        if "cpu_ratio" in row:
            line += f"  {times(row['cpu_ratio']):>9}  {row['cpu_verdict']}"
        if row["reference_ratio"] is not None:
            line += f"  (reference: {row['reference_ratio']:.2f}x its cold)"
        lines.append(line)
    return "\n".join(lines)


def report(results: dict, commits: dict[str, str]) -> str:
    lines = [f"reference {commits['reference']}, current {commits['current']}", "", table(verdicts(results["figures"], results.get("cpu"))), "",
             "each run, with the cores other processes kept busy meanwhile:"]
    for run in results["runs"]:
        load = "unknown" if run["other_load"] is None else f"{run['other_load']:.2f} cores"
        failed = "" if run["ok"] else f"  FAILED: {' | '.join(run['tail'])}"
        if run.get("missing"):
            failed += f"  (missing from this environment: {', '.join(run['missing'])})"
        cpu = "" if run.get("cpu_seconds") is None else f" ({run['cpu_seconds']:.0f} CPU s)"
        lines.append(f"  {run['tree']:<9} {run['figure']:<34} {run['seconds']:>7.0f} s{cpu}  other load {load}{failed}")
    for tree in TREES:
        for figure, found in results["split"][tree].items():
            lines += ["", f"where the {tree} tree's {figure} went (each entry once; an experiment's runs may overlap):"]
            lines += [f"  {label:<40} {seconds:>7.1f} s" for label, seconds in found]
            total = results["figures"][tree].get(figure)
            lines.append(f"  {'all entries':<40} {sum(s for _, s in found):>7.1f} s of {seconds_text(total)}")
    return "\n".join(lines)


def seconds_text(seconds: float | None) -> str:
    return "a failed run" if seconds is None else f"{seconds:.0f} s"


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"error: git {' '.join(args)}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return done.stdout.strip()


def resolve(rev: str) -> str:
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"error: --against {rev!r} is not a commit of this repository")
    return done.stdout.strip()


@contextlib.contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM ends the run through `finally` blocks, as Ctrl-C does, so that a
    change is undone and the temporary folder removed."""
    def stop(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=REFERENCE, metavar="REV", help=f"the reference commit (default {REFERENCE})")
    parser.add_argument("--only", choices=["build", "cold", "tests"], help="measure the builds, the cold builds or the test command only")
    parser.add_argument("--with-cold-tests", action="store_true", help="also the test command with an empty cache (long)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    reference = resolve(args.against)
    current = git("rev-parse", "HEAD") + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    steps = plan(args.only, args.with_cold_tests)
    if args.dry_run:
        in_reference = set(git("ls-tree", "-r", "--name-only", reference).splitlines())
        targets = {("reference", name): change_target(in_reference.__contains__, name) for name in CHANGES}
        targets |= {("current", name): change_target(lambda p: (ROOT / p).is_file(), name) for name in CHANGES}
        folders = {"reference": "$SCRATCH/reference", "current": str(ROOT)}
        print(f"git archive {reference} | tar -x -C $SCRATCH/reference")
        print("\n".join(step.describe(folders, "$SCRATCH", targets) for step in steps))
        return 0
    with terminated_cleanly(), tempfile.TemporaryDirectory(prefix="learnjax-budget-") as folder:
        scratch = Path(folder)
        exported = scratch / "reference"
        exported.mkdir()
        archive = subprocess.run(["git", "archive", reference], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(exported)], input=archive, check=True)
        results = execute(steps, {"reference": exported, "current": ROOT}, scratch)
    commits = {"reference": reference, "current": current}
    print(report(results, commits))
    if args.json:
        args.json.write_text(json.dumps({"commits": commits, "rows": verdicts(results["figures"], results["cpu"]), **results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
