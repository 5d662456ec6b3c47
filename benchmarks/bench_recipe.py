"""The default pre-training recipe end to end, learnjax against plain PyTorch eager.

    python -m benchmarks.bench_recipe [--repeats 3] [--json out.json] [--cores N]
    python -m benchmarks.bench_recipe --check   # only: does the PyTorch side train on the same rows?

Each run is a fresh process, timed by the wall clock from just before it is
spawned until it has exited after saving the model; nothing is cached between
runs (an empty `LEARNJAX_CACHE`, no compile cache). Both sides run `PretrainRecipe()`:
the built-in corpus (40,000 texts), its vocabulary, packed rows of 32 tokens,
1800 masked-prediction steps of batch 64 with AdamW (warm-up, then cosine decay).

- learnjax: the `learnjax pretrain --json --out DIR` command, run as
  `learnjax.cli.main` by this file's `--child learnjax` entry point, which wraps
  (without changing) `pretrain`, the model constructor, `train_masked_prediction` and
  `Foundation.save` with timers, to report where the time went.
- PyTorch: `--child torch`, the same work written in eager PyTorch with
  `torch_impl.py` (model, masking, loss, `MaskedTrainer`): build the corpus,
  vocabulary and packed rows, draw the same shuffled batches, train, read the
  loss back every 10 steps as learnjax does, and save (`torch.save` of the
  state_dict, the vocabulary and the loss history as JSON).

Threads: both sides keep their defaults, a thread pool with one thread per core
they may use. By default (`--cores auto`, as in bench_steps.py) that is every
core, unless other processes already keep a quarter core or more busy: then both
sides are pinned to the same single core, because PyTorch's OpenMP pool waits
on whichever thread the scheduler preempted (with 1.2 cores busy elsewhere, a
2-thread PyTorch run of this recipe took 440-535 s, a 1-core run 64 s), which
would measure the background load rather than the two implementations. The load
is sampled before each round. `--cores N` forces N cores.

Data on the PyTorch side: both sides generate the corpus themselves, in their
own process, with learnjax's own pure-Python corpus and tokenizer code. The
PyTorch process loads those modules (`corpus`, `world`, `messages`,
`tokenizer`) from their files under a bare `learnjax` package that skips the
package's `__init__`, which would import jax and charge JAX's import time to
PyTorch; it draws its batches with `learnjax.training.loops.batch_indices`, compiled
from that module's source for the same reason (`harness.library_function`).
This was preferred over writing the corpus to a shared text file: that would
send learnjax through `--corpus` (texts streamed from files, read twice), a
path users of the default recipe never take, and would move the corpus
generation out of the measured work of both sides.

Every run reports a fingerprint of its vocabulary, token rows, segment ids and
batch order; the table is only printed if all runs agree. `--check` compares the
arrays themselves, the PyTorch side's (made in a process without jax) against
learnjax's own pipeline.

Masking draws from each framework's own generator, so the two sides see the
same rows in the same order but mask different positions: their losses agree
in level, not to the digit.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # a child's clock starts here, before its imports

import argparse  # noqa: E402
import ast  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import harness, timing  # noqa: E402
from benchmarks.harness import LEARNJAX_SRC as SRC  # noqa: E402

RESULT = "BENCH-RESULT "  # prefix of a child's one-line JSON report
LOG_EVERY = 10  # the PyTorch loop reads the loss back every 10 steps (learnjax: once per call of 20 steps)
PHASES = ("import", "data", "model", "train", "save")
SIDES = {"learnjax": "learnjax (CLI)", "torch": "PyTorch eager"}


def recipe_defaults() -> dict:
    """`PretrainRecipe()` as a dict, read from training/recipe.py's source (importing it imports jax)."""
    tree = ast.parse((SRC / "training" / "recipe.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PretrainRecipe")
    return {n.target.id: ast.literal_eval(n.value) for n in cls.body if isinstance(n, ast.AnnAssign) and n.value is not None}


def data_modules():
    """learnjax's corpus and tokenizer modules, imported without `learnjax/__init__.py` (and jax)."""
    if "learnjax" not in sys.modules:
        package = types.ModuleType("learnjax")
        package.__path__ = [str(SRC)]
        sys.modules["learnjax"] = package
    from learnjax.data import corpus  # corpus imports world, messages and tokenizer: stdlib and numpy only
    from learnjax.text import tokenizer

    return corpus, tokenizer


def batch_indices(n_examples: int, batch_size: int, steps: int, seed: int):
    """`learnjax.training.loops.batch_indices`, without importing that module (it imports jax)."""
    import numpy as np

    return harness.library_function("training.loops", "batch_indices", np=np)(n_examples, batch_size, steps, seed)


def fingerprint(vocab: list[str], tokens, segments, batches) -> dict:
    """Short hashes of the training data, so runs in different processes can be compared."""
    import numpy as np

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:16]

    return {
        "rows": list(tokens.shape), "vocabulary": len(vocab), "vocab_sha": sha(json.dumps(vocab).encode()),
        "tokens_sha": sha(np.ascontiguousarray(tokens, np.int32).tobytes()),
        "segments_sha": sha(np.ascontiguousarray(segments, np.int32).tobytes()),
        "batches_sha": sha(np.concatenate(list(batches)).astype(np.int64).tobytes()),
    }


# ---------------------------------------------------------------- children (timed processes)

def learnjax_child(out: Path) -> dict:
    import learnjax.cli
    import learnjax.data.textfiles  # noqa: F401 - cmd_pretrain imports it: count it with the other imports
    import learnjax.training.pretraining as pt

    marks = {"import": time.perf_counter()}
    seen = {}

    def timed(name, fn, keep=None):
        def wrapper(*args, **kwargs):
            marks.setdefault(name, time.perf_counter())  # a phase starts at its first call
            result = fn(*args, **kwargs)
            marks[name + "_end"] = time.perf_counter()
            if keep:
                keep(args, kwargs)
            return result
        return wrapper

    # `pretrain` and the CLI look these names up when called, so the wrappers are used.
    pt.pretrain = timed("pretrain", pt.pretrain)
    pt.MaskedLanguageModel = timed("model", pt.MaskedLanguageModel)
    pt.train_masked_prediction = timed("train", pt.train_masked_prediction, lambda a, kw: seen.update(tokens=a[2], segments=a[3]))
    pt.Foundation.save = timed("save", pt.Foundation.save, lambda a, kw: seen.update(foundation=a[0]))
    status = learnjax.cli.main(["pretrain", "--json", "--out", str(out)])
    if status:
        raise SystemExit(status)
    phases = {
        "import": marks["import"] - T0, "data": marks["model"] - marks["pretrain"], "model": marks["train"] - marks["model"],
        "train": marks["train_end"] - marks["train"], "save": marks["save_end"] - marks["save"],
    }
    from learnjax.training.loops import batch_indices as library_batches

    f = seen["foundation"]
    r = f.recipe
    check = time.perf_counter()
    data = fingerprint(f.tokenizer.vocab, seen["tokens"], seen["segments"], library_batches(len(seen["tokens"]), r.batch_size, r.steps, r.seed))
    return {"phases": phases, "loss": f.history.loss, "data": data, "check_s": time.perf_counter() - check}


def torch_data(recipe: dict):
    """The PyTorch side's data preparation: what `learnjax.training.pretraining.pretrain` does before the model."""
    corpus, tokenizer = data_modules()
    texts = corpus.build_corpus(recipe["n_texts"], recipe["corpus_seed"])
    tok = tokenizer.Tokenizer.from_texts(texts)
    tokens, segments = tok.encode_packed(texts, recipe["max_len"])
    return tok, tokens, segments


def torch_child(out: Path) -> dict:
    import torch

    data_modules()  # before torch_impl, which imports learnjax.text.tokenizer: not the package's __init__ (and jax)
    from benchmarks import torch_impl

    marks = {"import": time.perf_counter()}

    r = recipe_defaults()
    # torch_impl.MaskedTrainer builds its schedule for 1800 steps with 100 of warm-up.
    assert (r["steps"], r["warmup_steps"]) == (1800, 100), "torch_impl's schedule no longer matches the recipe"
    tok, tokens, segments = torch_data(r)
    marks["data"] = time.perf_counter()

    size = harness.Size("recipe", len(tok), r["max_len"], r["d_model"], r["n_layers"], r["n_heads"], r["d_ff"],
                        r["batch_size"], r["mask_rate"], r["learning_rate"])
    trainer = torch_impl.MaskedTrainer(size, compile=False, seed=r["seed"])  # AdamW, weight decay 0.01, LambdaLR
    marks["model"] = time.perf_counter()

    losses, accuracies, pending = [], [], []
    for step, idx in enumerate(batch_indices(len(tokens), r["batch_size"], r["steps"], r["seed"])):
        pending.append(torch.stack(trainer.step(tokens[idx], segments[idx])))
        if len(pending) == LOG_EVERY or step == r["steps"] - 1:  # read back as learnjax does
            for loss, accuracy in torch.stack(pending).tolist():
                losses.append(loss)
                accuracies.append(accuracy)
            pending.clear()
            if not math.isfinite(losses[-1]):
                raise RuntimeError(f"the loss became {losses[-1]} at step {step}")
    marks["train"] = time.perf_counter()

    out.mkdir(parents=True, exist_ok=True)
    torch.save(trainer.model.state_dict(), out / "model.pt")
    (out / "tokenizer.json").write_text(tok.to_json(), encoding="utf-8")
    (out / "meta.json").write_text(json.dumps({"recipe": r, "history": {"loss": losses, "accuracy": accuracies}}), encoding="utf-8")
    marks["save"] = time.perf_counter()

    phases, previous = {}, T0
    for name in PHASES:
        phases[name], previous = marks[name] - previous, marks[name]
    check = time.perf_counter()
    data = fingerprint(tok.vocab, tokens, segments, batch_indices(len(tokens), r["batch_size"], r["steps"], r["seed"]))
    return {"phases": phases, "loss": losses, "data": data, "check_s": time.perf_counter() - check,
            "torch_threads": torch.get_num_threads(), "jax_imported": "jax" in sys.modules}


def torch_data_child(path: Path) -> None:
    """For `--check`: the PyTorch side's arrays, saved for the parent to compare."""
    import numpy as np

    r = recipe_defaults()
    tok, tokens, segments = torch_data(r)
    batches = np.stack(list(batch_indices(len(tokens), r["batch_size"], r["steps"], r["seed"])))
    np.savez(path, tokens=tokens, segments=segments, batches=batches, vocab=np.array(tok.vocab), jax_imported="jax" in sys.modules)


# ---------------------------------------------------------------- parent

def child_env(folder: Path) -> dict[str, str]:
    cache = folder / "learnjax-cache"
    cache.mkdir(exist_ok=True)  # empty: no cached foundation model can be reused
    return harness.fresh_env({"LEARNJAX_CACHE": str(cache)}, folder)


def run_child(side: str, out: Path, env: dict[str, str], cores: set[int] | None) -> dict:
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    with timing.other_processes_load() as load:  # everything but this process and the child
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_recipe", "--child", side, str(out)],
                              env=env, cwd=str(harness.ROOT), capture_output=True, text=True, preexec_fn=pin)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode or not lines:
        raise RuntimeError(f"{side} run failed (status {proc.returncode}):\n{proc.stderr[-2000:]}{proc.stdout[-500:]}")
    report = json.loads(lines[-1][len(RESULT):])
    saved = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out, ignore_errors=True)
    report["phases"]["other"] = wall - sum(report["phases"].values())  # interpreter start, exit, fingerprint
    return {"side": side, "wall_s": wall, "cpu_s": cpu, "background_cores": load["cores"] or 0.0, "saved_bytes": saved,
            "final_loss": statistics.fmean(report.pop("loss")[-50:]), **report}


def check(folder: Path) -> bool:
    """The PyTorch side's data (made in a fresh process, without jax) against learnjax's own pipeline."""
    import numpy as np

    from learnjax.data import corpus
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.loops import batch_indices as library_batches
    from learnjax.training.recipe import PretrainRecipe

    path = folder / "torch-data.npz"
    subprocess.run([sys.executable, "-m", "benchmarks.bench_recipe", "--child", "torch-data", str(path)],
                   env=child_env(folder), cwd=str(harness.ROOT), check=True)
    theirs = np.load(path)
    r = PretrainRecipe()
    texts = corpus.build_corpus(r.n_texts, r.corpus_seed)
    tok = Tokenizer.from_texts(texts)
    tokens, segments = tok.encode_packed(texts, r.max_len)
    batches = np.stack(list(library_batches(len(tokens), r.batch_size, r.steps, r.seed)))
    same = lambda a, b: a.shape == b.shape and a.dtype == b.dtype and bool((a == b).all())  # noqa: E731
    results = {
        "recipe read from source = PretrainRecipe()": recipe_defaults() == r.to_dict(),
        "PyTorch side imported no jax": not bool(theirs["jax_imported"]),
        f"vocabulary ({len(tok)} words)": theirs["vocab"].tolist() == tok.vocab,
        f"token rows {tokens.shape} {tokens.dtype}": same(theirs["tokens"], tokens),
        f"segment ids {segments.shape}": same(theirs["segments"], segments),
        f"batch order {batches.shape}": same(theirs["batches"], batches),
    }
    for name, ok in results.items():
        print(f"  {'same' if ok else 'DIFFERENT':9}  {name}")
    return all(results.values())


def report(runs: list[dict], sides: list[str]) -> tuple[str, dict]:
    med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    summary = {}
    lines = [f"{'':15} {'median s':>9}  {'runs s':20} " + " ".join(f"{p:>7}" for p in (*PHASES, "other"))
             + f" {'final loss':>10} {'cpu s':>6} {'cores':>7} {'busy':>5}"]
    for side in sides:
        mine = [x for x in runs if x["side"] == side]
        phases = {p: med([x["phases"][p] for x in mine]) for p in (*PHASES, "other")}
        summary[side] = {"median_wall_s": med([x["wall_s"] for x in mine]), "wall_s": [x["wall_s"] for x in mine],
                         "median_phases_s": phases, "final_loss": med([x["final_loss"] for x in mine]),
                         "median_cpu_s": med([x["cpu_s"] for x in mine]), "median_background_cores": med([x["background_cores"] for x in mine])}
        s = summary[side]
        lines.append(f"{SIDES[side]:15} {s['median_wall_s']:9.1f}  {' / '.join(f'{x:.1f}' for x in s['wall_s']):20} "
                     + " ".join(f"{phases[p]:7.1f}" for p in (*PHASES, "other"))
                     + f" {s['final_loss']:10.3f} {s['median_cpu_s']:6.0f} {'/'.join(str(len(x['cores'])) for x in mine):>7}"
                     + f" {s['median_background_cores']:5.2f}")
    if len(sides) == 2:
        summary["ratio_torch_over_learnjax"] = summary["torch"]["median_wall_s"] / summary["learnjax"]["median_wall_s"]
        lines.append(f"PyTorch / learnjax, median wall time: {summary['ratio_torch_over_learnjax']:.2f} (>1: learnjax is faster)")
    return "\n".join(lines), summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each runs learnjax, then PyTorch (default: 3)")
    parser.add_argument("--json", type=Path, help="also write every run to this file")
    parser.add_argument("--cores", default="auto", help="pin both sides to this many cores; auto (default): all, "
                        "or 1 when other processes already keep the machine busy (harness.choose_cores)")
    parser.add_argument("--check", action="store_true", help="only check that both sides get the same vocabulary, rows and batches")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        side, out = args.child[0], Path(args.child[1])
        if side == "torch-data":
            torch_data_child(out)
            return 0
        result = {"learnjax": learnjax_child, "torch": torch_child}[side](out)
        print(RESULT + json.dumps(result), flush=True)
        return 0

    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    folder = Path(tempfile.mkdtemp(prefix="learnjax-bench-recipe-"))
    try:
        if args.check:
            ok = check(folder)
            print("the PyTorch side trains on the same data" if ok else "the data differ")
            return 0 if ok else 1
        sides = ["learnjax"]
        if importlib.util.find_spec("torch") is None:
            print("torch is not installed: only learnjax runs (pip install torch==2.13.0, or pip install -e '.[bench]')")
        else:
            sides.append("torch")
        available = sorted(os.sched_getaffinity(0))
        r = recipe_defaults()
        print(f"PretrainRecipe(): {r['n_texts']} texts, {r['steps']} steps of {r['batch_size']} x {r['max_len']} tokens, "
              f"d_model {r['d_model']}, {r['n_layers']} layers; {args.repeats} rounds of {', '.join(SIDES[s] for s in sides)}", flush=True)
        runs = []
        for i in range(args.repeats):
            # Chosen again each round (the load changes); both sides of a round get the same cores.
            cores = harness.choose_cores(args.cores, log=lambda m: print(f"round {i + 1}: {m}", flush=True))
            for side in sides:  # alternating, so background load falls on both sides alike
                x = run_child(side, folder / f"{side}-{i}", child_env(folder), cores)
                runs.append(x | {"round": i, "cores": sorted(cores or available)})
                print(f"  {SIDES[side]:15} {x['wall_s']:6.1f} s, final loss {x['final_loss']:.3f}, "
                      f"other processes kept {x['background_cores']:.2f} cores busy", flush=True)
        prints = {json.dumps(x["data"], sort_keys=True) for x in runs}
        if len(prints) != 1:
            print("the runs trained on different data:\n" + "\n".join(prints))
            return 1
        table, summary = report(runs, sides)
        print()
        print(f"end to end, fresh process to saved model; float32 on {harness.cpu_name()}")
        print(table)
        data = runs[0]["data"]
        print(f"wall time from spawning the process to its exit; phases are medians, measured inside the process "
              f"(other: interpreter start and exit, the data fingerprint); final loss: mean of the last 50 logged losses; "
              f"cpu s: CPU time of the process; cores: cores it ran on, per run; busy: cores other processes kept busy "
              f"meanwhile (median); above about 0.25 with 2 cores the PyTorch time mostly measures that load. Same data on every run: "
              f"vocabulary {data['vocabulary']}, {data['rows'][0]} packed rows, tokens {data['tokens_sha']}.")
        if args.json:
            out = {"recipe": r, "repeats": args.repeats, "cpu": harness.cpu_name(),
                   "platform": platform.platform(), "python": platform.python_version(), "jax": version("jax"),
                   "torch": version("torch") if "torch" in sides else None, "data": data, "summary": summary, "runs": runs}
            args.json.write_text(json.dumps(out, indent=2))
            print(f"wrote {args.json}")
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
