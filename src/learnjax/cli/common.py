"""What the commands share: bad-usage errors, argument types, common options, loading a model."""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any


class UsageError(ValueError):
    """Bad command-line input (exit status 2). `command` is the command it was
    given to, where known."""

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.command = command


class Parser(argparse.ArgumentParser):
    """Raises bad usage instead of printing it, so that `main` reports it in one
    line, as text or as JSON."""

    def error(self, message: str):
        raise UsageError(message, self.prog.partition(" ")[2] or None)


def integer_at_least(minimum: int):
    """An argparse type: an integer no smaller than `minimum` (argparse names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive = integer_at_least(1)


seed_number = integer_at_least(0)  # numpy's generators take no negative seed


top_k_number = integer_at_least(0)  # 0: no limit


def number_in(low: float, high: float, *, low_open: bool = False, what: str):
    """An argparse type: a finite number in [low, high] ((low, high] with `low_open`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (low < value if low_open else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


temperature_number = number_in(0.0, 1e6, what="0 (greedy) or positive")


top_p_number = number_in(0.0, 1.0, low_open=True, what="in (0, 1]")


positive_number = number_in(0.0, 1e6, low_open=True, what="positive")


finite_number = number_in(-1e6, 1e6, what="a number between -1e6 and 1e6")


def dataclass_defaults(module: str, name: str) -> dict[str, Any]:
    """The default values of the dataclass `name` in `module`, read from its
    source without importing it: the help states them, and importing the
    library's modules costs `learnjax`'s start-up (JAX, numpy, tokenizers).
    A default is a literal or a name bound to one, in the module or imported
    from another (tests/test_cli_defaults.py checks them against the classes)."""
    tree = _source_tree(module)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    return {
        n.target.id: _literal(n.value, tree)
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None
    }


def _source_tree(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def _literal(node: ast.expr, tree: ast.Module) -> Any:
    """The value of `node`: a literal, or a name `tree` binds to one (or imports)."""
    if not isinstance(node, ast.Name):
        return ast.literal_eval(node)
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in statement.targets):
            return ast.literal_eval(statement.value)
        if isinstance(statement, ast.ImportFrom) and statement.module:
            for alias in statement.names:
                if (alias.asname or alias.name) == node.id:
                    return _literal(ast.Name(alias.name), _source_tree(statement.module))
    raise ValueError(f"{node.id} is not bound to a literal")


def megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def load_foundation(path: Path | None, json_output: bool, recipe=None):
    """The model in `path`, else the cached foundation model of `recipe` (default: the masked one)."""
    from learnjax.training.foundation import Foundation

    if path is not None:
        return Foundation.load(path)
    from learnjax.training.pretraining import foundation_model

    return foundation_model(recipe, progress=not json_output)


def device_mesh(args: argparse.Namespace):
    """The device mesh `--devices` asks for (default: every visible device), or
    None for one device, which trains exactly as without a mesh."""
    import jax

    from learnjax.training.sharding import data_mesh

    n = args.devices if args.devices is not None else jax.device_count()
    if n > jax.device_count():
        raise UsageError(f"--devices {n}: only {jax.device_count()} visible ({jax.devices()[0].platform})", args.command)
    if n == 1 and args.fsdp:
        raise UsageError("--fsdp shards the state over several devices; with one device there is nothing to shard", args.command)
    return data_mesh(n) if n > 1 else None


# The recipe's fields and the `pretrain` options that set them.
RECIPE_OPTIONS = {
    "objective": "--objective",
    "tokenizer": "--tokenizer",
    "vocab_size": "--vocab-size",
    "max_len": "--max-len",
    "d_model": "--d-model",
    "n_layers": "--layers",
    "n_heads": "--heads",
    "d_ff": "--d-ff",
    "steps": "--steps",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "seed": "--seed",
    "lora_rank": "--lora",
    "corpus": "--corpus",
    "init": "--init",
}


_SETTING = re.compile(r"\b(" + "|".join(RECIPE_OPTIONS) + r")=")


@contextlib.contextmanager
def options_named():
    """The library names its parameters in errors (`d_model=100 must be ...`):
    name the options that set them instead (`--d-model 100 must be ...`)."""
    try:
        yield
    except ValueError as e:
        raise ValueError(_SETTING.sub(lambda m: RECIPE_OPTIONS[m[1]] + " ", str(e))) from None


def training_checkpoints(args: argparse.Namespace, kind: str):
    """Where a command keeps its run's checkpoints (`--checkpoint-every`, `--resume`)."""
    from learnjax.storage.checkpoints import CHECKPOINT_FOLDER, TrainingCheckpoints

    return TrainingCheckpoints(args.out / CHECKPOINT_FOLDER, kind)


def report_skipped(args: argparse.Namespace, skipped: list[int] | None) -> None:
    """One line on stderr naming the rows --skip-bad-rows left out (the first five)."""
    if skipped and not args.json:
        lines = ", ".join(map(str, skipped[:5])) + (", ..." if len(skipped) > 5 else "")
        print(
            f"left out {len(skipped)} row{'s' if len(skipped) != 1 else ''} of {args.train} holding what cannot be text: "
            f"line{'s' if len(skipped) != 1 else ''} {lines}",
            file=sys.stderr,
        )


def add_command(group, examples: dict[str, str], name: str, help: str, func, runs_models: bool = True) -> argparse.ArgumentParser:
    """A command of `group` with its help, its handler `func`, its `examples` (by name) and `--json`."""
    sub = group.add_parser(name, help=help, description=help, epilog=examples.get(name), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(func=func, runs_models=runs_models)
    sub.add_argument("--json", action="store_true", help="print machine-readable JSON (errors too, on stderr)")
    return sub


def add_device_options(sub: argparse.ArgumentParser) -> None:
    """`--devices` and `--fsdp`."""
    sub.add_argument("--devices", type=positive, help="devices to train on, data parallel (default: every visible one)")
    sub.add_argument("--fsdp", action="store_true", help="shard the parameters and optimizer state over the devices too (FSDP)")


def add_checkpoint_options(sub: argparse.ArgumentParser) -> None:
    """`--checkpoint-every` and `--resume`."""
    sub.add_argument(
        "--checkpoint-every",
        type=positive,
        metavar="N",
        help="save the whole training state every N steps (in --out's checkpoint/ folder), so an interrupted run can --resume",
    )
    sub.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last checkpoint; the other options must be the ones it was started with",
    )


def add_window_options(sub: argparse.ArgumentParser) -> None:
    """`--windows` and `--batch-size`: how a classifier reads long texts, and in what batches."""
    sub.add_argument(
        "--windows",
        choices=["first", "average"],
        help="a text longer than the model's rows: read its first window of tokens, or average over all of them "
        "(default: as the classifier was fine-tuned; every window, unless it was saved before windows were recorded)",
    )
    sub.add_argument("--batch-size", type=positive, default=256, help="texts per batch (default: 256)")


def given_settings(base: Any, args: argparse.Namespace, *names: str) -> Any:
    """`base` (a settings dataclass) with the fields `names` that the command line
    gave (options of the same names; one left out is None and keeps its default)."""
    return dataclasses.replace(base, **{name: getattr(args, name) for name in names if getattr(args, name) is not None})
