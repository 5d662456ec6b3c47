"""Does pre-training pay on realistic mail, with the command line's defaults?

    python -m benchmarks.real_mail [--mb 5] [--labels 32 128] [--seeds 0 1 2] [--json out.json]

Writes the generated mail of `learnjax.data.mail` (an unlabeled corpus of
`--mb` megabytes, a pool of labeled messages, 1,000 test messages, one
vocabulary), then runs what a user runs, in this process:
`learnjax pretrain --corpus mails.txt`, `learnjax finetune` on 32 and 128
labeled messages (three random balanced subsets each; `--mode full` and
`--mode scratch`), `learnjax evaluate` on the test set; and TF-IDF + logistic
regression on the same subsets (its regularisation chosen on a dev set). Prints
mean held-out accuracy by labels, the seconds of each command, and pre-training's
training tokens (steps x batch x row) per second end to end: the machine may be
shared, so tokens/s is what to scale by (`benchmarks.own_data` splits the time
of the tokenizers and the steps).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from learnjax.data.mail import MailWriter, balanced_mails, write_mails
from learnjax.experiments.tfidf_baseline import tfidf_accuracy

POOL, DEV, TEST = 2000, 300, 1000


def _cli(*args) -> dict:
    """`learnjax ARGS --json`, in this process: its JSON result."""
    from learnjax.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main([*map(str, args), "--json"])
    if status != 0:
        raise RuntimeError(f"learnjax {' '.join(map(str, args))} failed: {out.getvalue()[-500:]}")
    return json.loads(out.getvalue())


def _write_labeled(path: Path, mails) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *((m.text, m.label) for m in mails)])
    return path


def run(folder: Path, megabytes: float, label_sizes, seeds, pretrain_args=(), foundation: Path | None = None) -> dict:
    results: dict = {}
    started = time.perf_counter()
    results["corpus"] = write_mails(folder / "mails.txt", megabytes, stream=0)
    pool = MailWriter(0, 1).labeled(POOL + DEV)
    pool, dev = pool[:POOL], pool[POOL:]
    test = MailWriter(0, 2).labeled(TEST)
    _write_labeled(folder / "test.csv", test)
    results["corpus"]["seconds"] = round(time.perf_counter() - started, 1)
    print(f"corpus: {results['corpus']['messages']} messages, {results['corpus']['bytes'] / 1e6:.1f} MB; "
          f"median message {statistics.median(len(m.text) for m in pool):.0f} characters", flush=True)

    if foundation is None:
        foundation = folder / "foundation"
        started, cpu = time.perf_counter(), time.process_time()
        pretrained = _cli("pretrain", "--corpus", folder / "mails.txt", "--out", foundation, *pretrain_args)
        pretrained["wall_s"] = round(time.perf_counter() - started, 1)
        pretrained["cpu_s"] = round(time.process_time() - cpu, 1)  # of every thread: on a shared machine, what the run itself cost
        pretrained["training_tokens_per_s"] = round(pretrained["steps"] * pretrained["batch_size"] * pretrained["max_len"] / pretrained["wall_s"])
        results["pretrain"] = pretrained
        print("pretrain:", json.dumps({k: v for k, v in pretrained.items() if k not in ("not_text_first", "out")}), flush=True)

    rows = []
    for n in label_sizes:
        for seed in seeds:
            train = _write_labeled(folder / f"train-{n}-{seed}.csv", balanced_mails(pool, n, seed))
            row = {"labels": n, "seed": seed}
            for mode in ("full", "scratch"):
                t = time.perf_counter()
                _cli("finetune", "--model", foundation, "--train", train, "--mode", mode, "--out", folder / "classifier", "--overwrite")
                row[f"{mode}_finetune_s"] = round(time.perf_counter() - t, 1)
                t = time.perf_counter()
                row[mode] = _cli("evaluate", "--model", folder / "classifier", "--test", folder / "test.csv")["accuracy"]
                row[f"{mode}_evaluate_s"] = round(time.perf_counter() - t, 1)
            row["tfidf"] = tfidf_accuracy(balanced_mails(pool, n, seed), dev, test)
            rows.append(row)
            print(json.dumps(row), flush=True)
    results["runs"] = rows
    results["mean"] = {n: {k: round(statistics.mean(r[k] for r in rows if r["labels"] == n), 4) for k in ("full", "scratch", "tfidf")}
                       for n in label_sizes}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--labels", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pretrain-args", nargs=argparse.REMAINDER, default=[],
                        help="more options for `learnjax pretrain` (the rest of the line), e.g. --max-len 128")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the pre-trained model there")
    parser.add_argument("--foundation", type=Path, help="fine-tune this pre-trained model instead of pre-training one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        results = run(Path(folder), args.mb, args.labels, args.seeds, args.pretrain_args, args.foundation)
        if args.keep and args.foundation is None:
            shutil.copytree(Path(folder) / "foundation", args.keep, dirs_exist_ok=True)
    print("\nlabels | pre-trained (full) | scratch | TF-IDF")
    for n, mean in results["mean"].items():
        print(f"{n} | {mean['full']:.1%} | {mean['scratch']:.1%} | {mean['tfidf']:.1%}")
    if "pretrain" in results:
        p = results["pretrain"]
        print(f"pre-training: {p['wall_s']} s wall, {p['cpu_s']} CPU seconds (the command's own count: {p['seconds']} s), "
              f"{p['training_tokens_per_s']} training tokens/s end to end")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
