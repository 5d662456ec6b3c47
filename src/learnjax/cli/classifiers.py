"""`learnjax classify` and `evaluate`: a fine-tuned classifier on texts and files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from learnjax.cli.common import (
    UsageError,
    add_command,
    add_window_options,
    print_json,
)
from learnjax.data.labeled_files import FORMATS

EXAMPLES = {
    "classify": """examples:
  learnjax classify --model spam-filter/ "Claim your jackpot now!"
  learnjax classify --model spam-filter/ --json "See you at dinner" "Free voucher inside"
  learnjax classify --model spam-filter/ --input inbox.txt --output labels.csv
  learnjax classify --model spam-filter/ --input inbox.jsonl --format jsonl --windows average
  cat inbox.txt | learnjax classify --model spam-filter/ --input -

--input reads plain text (one text per line), or CSV, TSV or JSON Lines with a
text field; the results (text, label, probability of each label) go to --output
or to standard output, as CSV (default), TSV or JSON Lines.""",
    "evaluate": """examples:
  learnjax evaluate --model spam-filter/ --test test.csv
  learnjax evaluate --model spam-filter/ --test test.jsonl --json

The file needs a header (CSV/TSV) or keys (JSON Lines) named text and label.""",
}


def cmd_classify(args: argparse.Namespace) -> None:
    from learnjax.training.finetuning import TextClassifier

    if bool(args.texts) == (args.input is not None):
        raise UsageError("give the texts to label, or --input FILE, not both" if args.texts else "give texts to label, or --input FILE", args.command)
    if args.input is None and (args.output or args.format or args.input_format):
        raise UsageError("--output, --format and --input-format go with --input FILE", args.command)
    if args.input is not None:
        _classify_file(args)
        return
    classifier = TextClassifier.load(args.model)
    results = classifier.classify(args.texts, windows=args.windows)
    if args.json:
        print_json(
            {"model": str(args.model), "results": [{"text": t, "label": label, "probability": p} for t, (label, p) in zip(args.texts, results)]}
        )
    else:
        for text, (label, p) in zip(args.texts, results):
            print(f"{label} ({p:.1%})  {text}")


def _classify_file(args: argparse.Namespace) -> None:
    """`classify --input`: texts streamed from a file, results streamed to --output
    (written to a temporary file beside it, which replaces it only when complete)
    or to standard output."""
    from learnjax.data.labeled_files import input_format, iter_texts
    from learnjax.evaluation.classifiers import classify_in_batches, write_predictions
    from learnjax.files.atomic import replacing
    from learnjax.training.finetuning import TextClassifier

    kind = args.input_format or input_format(args.input)  # checked before the model loads
    if args.input != "-" and not Path(args.input).is_file():
        raise FileNotFoundError(f"input file {args.input!r} does not exist")
    output = args.output
    fmt = args.format or (FORMATS.get(output.suffix.lower(), "csv") if output else "jsonl" if args.json else "csv")
    if output is not None:
        if output.is_dir():
            raise ValueError(f"--output {str(output)!r} is a folder; name a file")
        if output.exists() and args.input != "-" and os.path.samefile(output, args.input):
            raise ValueError(f"--output {str(output)!r} is the input file; write the results to another file")
        if output.exists() and not args.overwrite:
            raise ValueError(f"--output {str(output)!r} exists; replace it with --overwrite, or choose another file")
    classifier = TextClassifier.load(args.model)
    texts = (text for _, text in iter_texts(args.input, kind))
    results = classify_in_batches(classifier, texts, batch_size=args.batch_size, windows=args.windows, progress=not args.json)
    if output is None:
        count = write_predictions(results, classifier.labels, sys.stdout, fmt)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with replacing(output, "w", encoding="utf-8", newline="") as f:
        count = write_predictions(results, classifier.labels, f, fmt)
    if args.json:
        print_json({"model": str(args.model), "input": args.input, "output": str(output), "format": fmt, "texts": count})
    else:
        print(f"labeled {count} texts from {args.input}: {output} ({fmt})", file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import read_labeled
    from learnjax.evaluation.classifiers import evaluate
    from learnjax.training.finetuning import TextClassifier

    texts, labels = read_labeled(args.test)  # checked before the model loads
    classifier = TextClassifier.load(args.model)
    evaluation = evaluate(classifier, texts, labels, batch_size=args.batch_size, windows=args.windows, progress=not args.json)
    if args.json:
        print_json({"model": str(args.model), "test": str(args.test), **evaluation.to_dict()})
    else:
        print(evaluation.report())


def add_commands(commands) -> None:
    """`classify` and `evaluate`."""
    p = add_command(commands, EXAMPLES, "classify", "Label texts with a fine-tuned classifier.", cmd_classify)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="one or more texts to label (or --input)")
    p.add_argument("--model", required=True, type=Path, help="a fine-tuned classifier directory")
    p.add_argument(
        "--input",
        metavar="FILE",
        help="a file of texts to label: plain text, one per line, or CSV, TSV or JSON Lines with a text field; - reads standard input",
    )
    p.add_argument("--input-format", choices=["text", "csv", "tsv", "jsonl"], help="the format of --input (default: from its name; - is text)")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the results there (default: standard output)")
    p.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="the results' format (default: from --output's name, else CSV)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    add_window_options(p)

    p = add_command(
        commands,
        EXAMPLES,
        "evaluate",
        "Measure a fine-tuned classifier on a labeled test file: accuracy, precision, recall, F1, confusion matrix.",
        cmd_evaluate,
    )
    p.add_argument("--model", required=True, type=Path, help="a fine-tuned classifier directory")
    p.add_argument("--test", required=True, type=Path, help="labeled examples with 'text' and 'label' columns (CSV, TSV or JSON Lines)")
    add_window_options(p)
