"""`learnjax export`: a saved model written as a web page runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

from learnjax.cli.common import add_command, megabytes, print_json

EXAMPLES = {
    "export": """examples:
  learnjax export --model mine/ --out web/
  learnjax export --model spam-filter/ --out web/ --name spam --json

Writes NAME.json (the model's kind, configuration and tokenizer) and NAME.bin
(its parameters, little-endian float32) for a web page to run it.""",
}


def cmd_export(args: argparse.Namespace) -> None:
    from learnjax.storage.export import export_directory

    manifest = export_directory(args.model, args.out, name=args.name)
    weights = manifest.with_suffix(".bin")
    size = manifest.stat().st_size + weights.stat().st_size
    if args.json:
        print_json({"manifest": str(manifest), "weights": str(weights), "bytes": size})
    else:
        print(f"exported {args.model} to {manifest} and {weights} ({megabytes(size)})")


def add_commands(commands) -> None:
    """`export`."""
    p = add_command(commands, EXAMPLES, "export", "Write a saved model as a web page runs it: a JSON manifest and a float32 binary.", cmd_export)
    p.add_argument("--model", required=True, type=Path, help="a saved model directory (pretrain or finetune --out)")
    p.add_argument("--out", required=True, type=Path, help="folder to write NAME.json and NAME.bin to (made if missing)")
    p.add_argument("--name", help="the files' name (default: the model's kind, e.g. masked_lm)")
