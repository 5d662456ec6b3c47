"""The `learnjax` command run as a user runs it: a fresh process, its output captured."""

import subprocess
import sys


def run_cli(*args, stdin: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m learnjax.cli ARGS` (each argument as text), with `stdin` as its standard input."""
    return subprocess.run([sys.executable, "-m", "learnjax.cli", *map(str, args)], capture_output=True, text=True,
                          input=stdin, timeout=timeout)
