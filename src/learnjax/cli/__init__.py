"""The `learnjax` command: pre-train, fill in masks, generate, fine-tune, classify, evaluate, experiment.

Errors print one line on stderr (with `--json`, a JSON object) and exit with
status 1 (2 for bad usage, 130 when interrupted); `--debug` shows the full
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from learnjax.cli import cache, classifiers, experiments, export, finetuning, pretraining
from learnjax.cli.common import Parser, UsageError

__all__ = ["UsageError", "build_parser", "main", "run"]


class _Version(argparse.Action):
    """`--version`, looked up only when asked: finding the installed package's
    metadata takes about a tenth of a second, a large part of `--help`'s time."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"learnjax {version('learnjax')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="learnjax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (pretraining, finetuning, classifiers, experiments, export, cache):  # the order of `--help`
        group.add_commands(commands)
    return parser


def run(argv: list[str]) -> str:
    """Runs a command in this process and returns what it printed (for pages and tests).

    >>> print(run(["fill-mask", "--top-k", "1", "The sky is [MASK]."]).split()[0])
    blue
    """
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    if status:
        raise RuntimeError(f"learnjax {' '.join(argv)} failed with status {status}")
    return out.getvalue()


def _report(command: str | None, message: str, json_output: bool, *, error: bool = True) -> None:
    """One line on stderr: `learnjax COMMAND: error: MESSAGE`, or a JSON object."""
    if json_output:
        print(json.dumps({"error": message, "command": command}, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"learnjax{' ' + command if command else ''}: {'error: ' if error else ''}{message}", file=sys.stderr)


def _manifest_bytes(directory: Path | None) -> bytes | None:
    from learnjax.storage.checkpoints import MANIFEST

    try:
        return (directory / MANIFEST).read_bytes() if directory else None
    except OSError:
        return None


def _interrupted(directory: Path | None, before: bytes | None) -> str:
    """What an interrupted command left in its output directory, said truthfully:
    a save replaces the manifest last, so comparing it tells."""
    if directory is None:
        return "interrupted"
    after = _manifest_bytes(directory)
    if after != before:
        return f"interrupted after the new model was saved to {directory}"
    said = f"interrupted; the model in {directory} is unchanged" if before else f"interrupted; nothing was saved to {directory}"
    from learnjax.storage.checkpoints import CHECKPOINT_FOLDER, TrainingCheckpoints

    step = TrainingCheckpoints(directory / CHECKPOINT_FOLDER, "").step()
    if step is not None:
        said += f"; the last checkpoint, at step {step}, is in {directory / CHECKPOINT_FOLDER}: run the same command with --resume to continue"
    return said


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        _report(e.command, str(e), "--json" in argv)
        return 2
    out = getattr(args, "out", None)  # the directory a command saves to
    before = _manifest_bytes(out) if out else None
    try:
        if args.runs_models:
            from learnjax.storage.cache import use_compilation_cache

            use_compilation_cache()  # a second run of a command loads its compiled steps
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not after main returns
    except KeyboardInterrupt:
        if args.debug:
            raise
        _report(args.command, _interrupted(out, before), args.json, error=False)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    except BrokenPipeError:
        # The reader went away (`| head -1`): stop quietly, as Unix tools do.
        # Python's own last flush of stdout would fail again: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped this way
    except UsageError as e:
        if args.debug:
            raise
        _report(args.command, str(e), args.json)
        return 2
    except (ValueError, OSError, RuntimeError) as e:
        if args.debug:
            raise
        _report(args.command, str(e), args.json)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
