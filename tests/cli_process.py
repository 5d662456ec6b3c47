"""The `learnjax` command run as a user runs it, its output captured: in this
process (`run_cli`), or in a fresh one (`run_cli_process`) where the test is
about the process itself: its start, signals, pipes, devices, or a traceback.

In this process the command runs through `learnjax.cli.main`, as
`python -m learnjax.cli` runs it, and reports what the process would: the exit
status, standard output, and standard error with the warnings and log records
a fresh interpreter would print there. It saves the second or two each process
spends importing JAX and loading its compiled programs, at every call.
"""

import contextlib
import io
import logging
import subprocess
import sys
import warnings


def run_cli_process(*args, stdin: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m learnjax.cli ARGS` (each argument as text), with `stdin` as its standard input."""
    return subprocess.run([sys.executable, "-m", "learnjax.cli", *map(str, args)], capture_output=True, text=True,
                          input=stdin, timeout=timeout)


@contextlib.contextmanager
def _as_a_fresh_interpreter(stderr: io.StringIO):
    """Warnings and log records go to `stderr`, filtered as a new interpreter
    filters them (not to pytest's collectors, where a stray one would hide);
    JAX's settings, which the command changes (its compilation cache), are put back."""
    import jax

    settings = {name: getattr(jax.config, name) for name in
                ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs", "jax_persistent_cache_min_entry_size_bytes")}
    handler = logging.StreamHandler(stderr)
    handler.setLevel(logging.WARNING)  # what logging's last-resort handler prints
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)  # Python's default filters
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: stderr.write(
                warnings.formatwarning(message, category, filename, lineno, line))
            yield
    finally:
        root.removeHandler(handler)
        for name, value in settings.items():
            jax.config.update(name, value)


def run_cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`learnjax ARGS` in this process: what `run_cli_process` returns, without starting one."""
    from learnjax.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _as_a_fresh_interpreter(err),
          _standard_input(stdin)):
        try:
            status = main(argv)
        except SystemExit as stop:  # --help and --version stop the parser, as they stop the process
            status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return subprocess.CompletedProcess(["learnjax", *argv], status, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _standard_input(text: str | None):
    """`text` as standard input; none given, an empty one, as `subprocess.run` gives a process."""
    saved = sys.stdin
    sys.stdin = io.StringIO(text or "")
    try:
        yield
    finally:
        sys.stdin = saved
