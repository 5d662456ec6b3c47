"""The `learnjax` command: pre-train, fill in masks, fine-tune, classify, experiment.

Errors print one line on stderr and exit with status 1 (2 for bad usage);
`--debug` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

EXAMPLES = {
    "pretrain": """examples:
  learnjax pretrain --out foundation/
  learnjax pretrain --corpus notes.txt books/ --steps 3000 --seed 1 --out mine/""",
    "fill-mask": """examples:
  learnjax fill-mask "Today I went to the café and drank [MASK]."
  learnjax fill-mask --model mine/ --top-k 3 --json "The [MASK] is blue." """,
    "finetune": """examples:
  learnjax finetune --model foundation/ --train labeled.csv --out spam-filter/
  learnjax finetune --model foundation/ --train labeled.jsonl --mode probe --steps 200 --out probe/

The file needs a header (CSV/TSV) or keys (JSON Lines) named text and label.""",
    "classify": """examples:
  learnjax classify --model spam-filter/ "Claim your jackpot now!"
  learnjax classify --model spam-filter/ --json "See you at dinner" "Free voucher inside" """,
    "experiment": """examples:
  learnjax experiment label-efficiency
  learnjax experiment label-efficiency --json""",
}


class UsageError(ValueError):
    """Bad command-line input (exit status 2)."""


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _load_foundation(path: Path | None, json_output: bool):
    from learnjax.pretraining import Foundation

    if path is not None:
        return Foundation.load(path)
    from learnjax.cache import foundation_model

    return foundation_model(progress=not json_output)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from learnjax.checkpoints import check_writable_model_dir
    from learnjax.pretraining import PretrainRecipe, pretrain
    from learnjax.textfiles import iter_lines, text_files

    recipe = PretrainRecipe()
    changes = {
        k: v for k, v in (("steps", args.steps), ("seed", args.seed), ("batch_size", args.batch_size), ("learning_rate", args.learning_rate))
        if v is not None
    }
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    check_writable_model_dir(args.out, overwrite=args.overwrite)  # before any training
    recipe = recipe.replace(**changes)
    texts = None
    if args.corpus:
        files = text_files(args.corpus)  # checks every path before any training starts
        texts = lambda: iter_lines(files)  # noqa: E731 - read twice, streamed each time
    started = time.perf_counter()
    foundation = pretrain(recipe, texts, progress=not args.json)
    out = foundation.save(args.out)
    result = {
        "out": str(out), "steps": recipe.steps, "vocabulary": len(foundation.tokenizer),
        "final_loss": foundation.history.loss[-1], "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        _print_json(result)
    else:
        print(f"saved to {out}: {result['vocabulary']} words, final loss {result['final_loss']:.3f}, {result['seconds']} s")


def cmd_fill_mask(args: argparse.Namespace) -> None:
    from learnjax.pretraining import fill_mask

    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    foundation = _load_foundation(args.model, args.json)
    predictions = fill_mask(foundation, args.text, top_k=args.top_k)
    if args.json:
        _print_json({"text": args.text, "predictions": [{"word": p.word, "probability": p.probability} for p in predictions]})
    else:
        for p in predictions:
            print(f"{p.word:>15}  {p.probability:6.1%}")


def cmd_finetune(args: argparse.Namespace) -> None:
    from learnjax.checkpoints import check_writable_model_dir
    from learnjax.finetuning import FinetuneSettings, check_mode, finetune
    from learnjax.labeled_files import read_labeled

    check_mode(args.mode)
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    check_writable_model_dir(args.out, overwrite=args.overwrite, reading_from=args.model)  # before any training
    texts, labels = read_labeled(args.train)  # checked before any model is loaded
    foundation = _load_foundation(args.model, args.json)
    changes = {k: v for k, v in (("steps", args.steps), ("learning_rate", args.learning_rate)) if v is not None}
    settings = dataclasses.replace(FinetuneSettings(), **changes)
    started = time.perf_counter()
    classifier = finetune(foundation, texts, labels, mode=args.mode, settings=settings, seed=args.seed, progress=not args.json)
    out = classifier.save(args.out)
    result = {
        "out": str(out), "mode": args.mode, "examples": len(texts), "labels": list(classifier.labels),
        "final_loss": classifier.history.loss[-1], "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        _print_json(result)
    else:
        print(f"saved to {out}: {args.mode} fine-tuning on {len(texts)} examples, labels {', '.join(classifier.labels)}, final loss {result['final_loss']:.3f}")


def cmd_classify(args: argparse.Namespace) -> None:
    from learnjax.finetuning import TextClassifier

    classifier = TextClassifier.load(args.model)
    results = classifier.classify(args.texts)
    if args.json:
        _print_json([{"text": t, "label": label, "probability": p} for t, (label, p) in zip(args.texts, results)])
    else:
        for text, (label, p) in zip(args.texts, results):
            print(f"{label} ({p:.1%})  {text}")


def cmd_experiment(args: argparse.Namespace) -> None:
    from learnjax import experiments

    result = experiments.label_efficiency()
    if args.json:
        _print_json(result)
        return
    print(experiments.label_efficiency_table(result))
    print(f"\n{len(result['seeds'])} seeds per cell; learning rate chosen per cell on the dev set from {result['learning_rates']}; "
          f"{result['settings']['steps']} steps of batch {result['settings']['batch_size']} for every mode; experiment took {result['seconds']:.0f} s.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="learnjax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('learnjax')}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name), formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=func)
        sub.add_argument("--json", action="store_true", help="print machine-readable JSON")
        return sub

    p = command("pretrain", "Pre-train a foundation model by masked prediction (self-supervised).", cmd_pretrain)
    p.add_argument("--corpus", nargs="+", metavar="PATH", help="text files or folders, one text per line (default: the built-in corpus)")
    p.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--batch-size", type=int, help="rows per batch (default: the recipe's)")
    p.add_argument("--learning-rate", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--out", required=True, type=Path, help="directory to save the model to")
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")

    p = command("fill-mask", "Predict the word hidden behind [MASK].", cmd_fill_mask)
    p.add_argument("text", help='text with exactly one [MASK], e.g. "I drank [MASK]."')
    p.add_argument("--model", type=Path, help="a pre-trained model directory (default: the built-in foundation model)")
    p.add_argument("--top-k", type=int, default=5, help="how many predictions to show (default: 5)")

    p = command("finetune", "Fine-tune a classifier on labeled examples (CSV, TSV or JSON Lines).", cmd_finetune)
    p.add_argument("--model", type=Path, help="a pre-trained model directory (default: the built-in foundation model)")
    p.add_argument("--train", required=True, type=Path, help="labeled examples with 'text' and 'label' columns")
    p.add_argument("--out", required=True, type=Path, help="directory to save the classifier to (not the --model directory)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
    p.add_argument("--mode", default="full", help="full (update everything), probe (frozen encoder) or scratch (no pre-training)")
    p.add_argument("--steps", type=int, help="training steps (default: 80)")
    p.add_argument("--learning-rate", type=float, help="peak learning rate (default: 0.001)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    p = command("classify", "Label texts with a fine-tuned classifier.", cmd_classify)
    p.add_argument("texts", nargs="+", metavar="TEXT", help="one or more texts to label")
    p.add_argument("--model", required=True, type=Path, help="a fine-tuned classifier directory")

    p = command("experiment", "Run a measured experiment of the site and print its table.", cmd_experiment)
    p.add_argument("name", choices=["label-efficiency"], help="label-efficiency: fine-tuning vs. probe vs. scratch against the number of labels")
    return parser


def run(argv: list[str]) -> str:
    """Runs a command in this process and returns what it printed (for pages and tests).

    >>> print(run(["fill-mask", "--top-k", "1", "The sky is [MASK]."]).split()[0])
    blue
    """
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    if status:
        raise RuntimeError(f"learnjax {' '.join(argv)} failed with status {status}")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from learnjax.cache import use_compilation_cache

        use_compilation_cache()  # a second run of a command loads its compiled steps
        args.func(args)
    except UsageError as e:
        if args.debug:
            raise
        parser.exit(2, f"learnjax {args.command}: error: {e}\n")
    except (ValueError, OSError, RuntimeError) as e:
        if args.debug:
            raise
        print(f"learnjax {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
