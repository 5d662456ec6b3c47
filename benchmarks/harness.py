"""Shared machinery of the benchmarks: sizes, data, FLOP counts and a runner that
times implementations in separate worker processes, interleaved.

Each implementation runs in its own fresh process, so its first step pays every
compile a new user pays (no in-memory or on-disk cache from an earlier run).
The timed rounds then alternate between the workers: on a shared, noisy machine
a burst of background load hits every implementation alike instead of one, and
the median over rounds discards the bursts.
"""

from __future__ import annotations
import __future__

import ast
import dataclasses
import functools
import importlib
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import timing

ROOT = Path(__file__).resolve().parents[1]
# Where learnjax's modules are, found without running the package's __init__ (which imports jax).
LEARNJAX_SRC = Path(importlib.util.find_spec("learnjax").submodule_search_locations[0])


@functools.lru_cache(maxsize=None)
def library_function(module: str, name: str, **names):
    """The function `name` of `learnjax.<module>`, compiled from that module's
    source without importing it: learnjax's modules import jax, which the PyTorch
    processes of the benchmarks must not pay for. `names` are its globals (the
    modules it uses)."""
    path = LEARNJAX_SRC / f"{module.replace('.', '/')}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace = dict(names)
    code = compile(ast.Module([node], type_ignores=[]), str(path), "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    exec(code, namespace)
    return namespace[name]


@dataclass(frozen=True)
class Size:
    name: str
    vocab_size: int
    max_len: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    batch_size: int
    mask_rate: float
    learning_rate: float = 5e-3

    @property
    def max_predictions(self) -> int:
        return library_function("training.masking", "max_predictions_for", math=math)(self.max_len, self.mask_rate)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.max_len

    def label(self) -> str:
        return f"{self.name} (d{self.d_model} L{self.n_layers} ff{self.d_ff} T{self.max_len} B{self.batch_size} V{self.vocab_size})"


def docs_size() -> Size:
    """The model the docs pre-train: `PretrainRecipe()` with the default corpus's vocabulary."""
    from learnjax.data import corpus
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.recipe import PretrainRecipe

    r = PretrainRecipe()
    vocab = len(Tokenizer.from_texts(corpus.build_corpus(r.n_texts, r.corpus_seed)))
    return Size("docs", vocab, r.max_len, r.d_model, r.n_layers, r.n_heads, r.d_ff, r.batch_size, r.mask_rate, r.learning_rate)


LARGE = Size("large", 2048, 128, 256, 4, 4, 1024, 32, 0.15)


def sizes(names: list[str]) -> list[Size]:
    return [docs_size() if n == "docs" else LARGE for n in names]


def step_flops(size: Size, objective: str) -> int:
    """Matrix-multiply FLOPs of one training step, counted by hand.

    Forward: per layer the qkv, attention-score, attention-value, output and two
    feed-forward products; then the head. Backward costs twice the forward
    (a gradient for each operand of every product), so a step is 3x forward.
    Element-wise work (softmax, LayerNorm, AdamW) is left out, as usual for
    utilisation figures, so the count is the same for every framework.
    """
    B, T, D, F, L = size.batch_size, size.max_len, size.d_model, size.d_ff, size.n_layers
    layer = 2 * B * T * D * 3 * D + 2 * (2 * B * T * T * D) + 2 * B * T * D * D + 2 * (2 * B * T * D * F)
    forward = L * layer
    if objective == "masked":
        P = size.max_predictions
        forward += 2 * B * P * D * D + 2 * B * P * D * size.vocab_size
    else:
        forward += 2 * B * D * 2
    return 3 * forward


def make_data(size: Size, n_batches: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Packed rows for pre-training and single-text rows with labels for the
    supervised step, from the docs' default corpus, plus fixed index batches
    drawn as `learnjax.training.loops.batch_indices` draws them."""
    from learnjax.data import corpus
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.loops import batch_indices
    from learnjax.training.recipe import PretrainRecipe

    r = PretrainRecipe()
    texts = corpus.build_corpus(r.n_texts, r.corpus_seed)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, size.max_len)
    sup_tokens = tokenizer.encode_batch(texts[:8192], size.max_len)
    sup_labels = np.random.default_rng(seed).integers(0, 2, len(sup_tokens)).astype(np.int32)
    B = size.batch_size
    return {
        "mlm_tokens": tokens, "mlm_segments": segments,
        "mlm_idx": np.stack(list(batch_indices(len(tokens), B, n_batches, seed))),
        "sup_tokens": sup_tokens, "sup_labels": sup_labels,
        "sup_idx": np.stack(list(batch_indices(len(sup_tokens), B, n_batches, seed))),
    }


# ---------------------------------------------------------------- worker side

class Runner:
    """What a worker times. `call` starts `steps_per_call` steps and may return
    before they finish (JAX dispatches asynchronously); `sync` waits for a list
    of such results and returns the last loss."""

    steps_per_call = 1

    def call(self, i: int):
        raise NotImplementedError

    def sync(self, pending: list) -> float:
        raise NotImplementedError

    def first_step(self) -> float:
        return self.sync([self.call(0)])

    def info(self) -> dict:
        return {}


def serve(spec: dict) -> None:
    """Worker loop: one JSON command per line on stdin, one JSON reply per line."""
    reply_to = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library chatter on stdout would corrupt the replies
    data = dict(np.load(spec["data"]))
    size = Size(**spec["size"])
    module = importlib.import_module(f"benchmarks.{spec['module']}")
    runners: dict[str, Runner] = {}
    counters: dict[str, int] = {}

    def answer(**kw):
        reply_to.write(json.dumps(kw) + "\n")

    answer(ready=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "setup":
                name = cmd["objective"]
                t0 = time.perf_counter()
                runner = module.build(spec["impl"], name, size, data)
                t_built = time.perf_counter()
                loss = runner.first_step()
                t1 = time.perf_counter()
                runners[name], counters[name] = runner, runner.steps_per_call
                answer(first_step_s=t1 - t0, build_s=t_built - t0, loss=loss, steps_per_call=runner.steps_per_call)
            elif cmd["cmd"] == "run":
                name, runner = cmd["objective"], runners[cmd["objective"]]
                pending, t0 = [], time.perf_counter()
                for _ in range(cmd["calls"]):
                    pending.append(runner.call(counters[name]))
                    counters[name] += runner.steps_per_call
                    if len(pending) == 10:  # read back every few calls, as the training loops do
                        loss = runner.sync(pending)
                        pending = []
                loss = runner.sync(pending) if pending else loss
                answer(seconds=time.perf_counter() - t0, loss=loss)
            elif cmd["cmd"] == "info":
                answer(**runners[cmd["objective"]].info())
            elif cmd["cmd"] == "quit":
                answer(bye=True)
                return
        except Exception as e:  # reported to the parent, which shows it in the table
            import traceback
            traceback.print_exc()
            answer(error=f"{type(e).__name__}: {e}")


# ---------------------------------------------------------------- parent side

class Worker:
    def __init__(self, spec: dict, env: dict[str, str], log_dir: Path, cores: set[int] | None = None):
        self.spec = spec
        self.log = log_dir / f"{spec['label'].replace(' ', '_').replace('/', '_')}.log"
        # Set before the interpreter starts, so every thread pool (OpenMP, XLA,
        # OpenBLAS) sizes itself to these cores.
        pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.harness", "--serve", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log.open("w"),
            text=True, env=env, cwd=str(ROOT), preexec_fn=pin,
        )
        self.ask_raw()  # waits for "ready": data loaded, nothing compiled yet

    def ask_raw(self, cmd: dict | None = None) -> dict:
        if cmd is not None:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log.read_text()[-1500:] if self.log.exists() else ""
            raise RuntimeError(f"worker {self.spec['label']} exited:\n{tail}")
        return json.loads(line)

    def ask(self, **cmd) -> dict:
        reply = self.ask_raw(cmd)
        if "error" in reply:
            tail = self.log.read_text()[-1500:]
            raise RuntimeError(f"{reply['error']}\n{tail}")
        return reply

    def close(self) -> None:
        try:
            self.ask(cmd="quit")
        except Exception:
            pass
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Row:
    """One implementation x size x objective; filled in by `measure`."""
    label: str
    impl: str
    objective: str
    size: Size
    module: str = "bench_steps"
    env: dict = dataclasses.field(default_factory=dict)
    max_rounds: int | None = None  # fewer rounds for very slow implementations
    round_s: float | None = None
    group: str = ""  # rows sharing a group share one worker process (set up in order)
    first_step_s: float | None = None
    first_step_fresh: bool = True
    step_s: list[float] = dataclasses.field(default_factory=list)
    loss: float | None = None
    error: str | None = None
    info: dict = dataclasses.field(default_factory=dict)
    calibration_s: float | None = None  # the second step, alone: a fallback when no round ran
    background: list[float] = dataclasses.field(default_factory=list)  # cores busy elsewhere, per round

    @property
    def median_step_s(self) -> float | None:
        return statistics.median(self.step_s) if self.step_s else None

    @property
    def best_step_s(self) -> float | None:
        return min(self.step_s) if self.step_s else None

    def to_json(self) -> dict:
        return {
            "label": self.label, "impl": self.impl, "objective": self.objective, "size": self.size.name,
            "env": self.env, "first_step_s": self.first_step_s, "first_step_fresh": self.first_step_fresh,
            "step_s_rounds": self.step_s, "median_step_s": self.median_step_s, "loss": self.loss,
            "error": self.error, "info": self.info, "background_cores_rounds": self.background,
        }


def fresh_env(extra: dict[str, str], cache_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.update({
        # The benchmarks package, and whatever learnjax this process imports.
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        # No compile cache may carry over from an earlier process or run.
        "JAX_ENABLE_COMPILATION_CACHE": "false",
        "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(prefix="inductor-", dir=cache_root),
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "0",
        "TORCHINDUCTOR_AUTOGRAD_CACHE": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    env.update(extra)
    return env


def background_cores(seconds: float = 2.0) -> float | None:
    """How many cores other processes keep busy, sampled over `seconds`."""
    with timing.other_processes_load() as load:
        time.sleep(seconds)
    return load["cores"]


def choose_cores(arg: str, log=print) -> set[int] | None:
    """`--cores`: a number pins every worker to that many cores; "auto" pins to one
    core when other processes already keep a quarter core or more busy, because a
    thread pool sized for all cores then waits on its preempted threads (PyTorch's
    OpenMP pool worst of all: a 2-thread step became 10-50x slower here), which
    would measure the background load rather than the implementations."""
    available = sorted(os.sched_getaffinity(0))
    if arg == "auto":
        load = background_cores()
        if load is None or load < 0.25 or len(available) == 1:
            log(f"cores: all {len(available)} (other processes busy on {load if load is None else round(load, 2)} cores)")
            return None
        log(f"cores: 1 of {len(available)}, because other processes keep {load:.2f} cores busy "
            f"(--cores {len(available)} to use all anyway)")
        return {available[-1]}
    n = int(arg)
    return None if n >= len(available) else set(available[:n])


def timed_ask(w: Worker, **cmd) -> tuple[dict, float | None]:
    """Runs a command and also returns how many cores other processes (all but
    the worker) kept busy meanwhile."""
    with timing.other_processes_load(own=lambda: timing.process_cpu_seconds(w.proc.pid)) as load:
        reply = w.ask(**cmd)
    return reply, load["cores"]


def measure(rows: list[Row], data_paths: dict[str, str], *, rounds: int, round_s: float,
            log=print, info_objectives: bool = True, cores: set[int] | None = None) -> None:
    """Sets every row up in a fresh worker (one at a time, so that first-step
    times do not overlap), then times them in interleaved rounds."""
    tmp = Path(tempfile.mkdtemp(prefix="learnjax-bench-"))
    workers: dict[str, Worker] = {}
    live: list[tuple[Row, Worker, int]] = []
    try:
        for row in rows:
            key = row.group or row.label
            try:
                if key not in workers:
                    spec = {"impl": row.impl, "module": row.module, "size": dataclasses.asdict(row.size),
                            "data": data_paths[row.size.name], "label": key}
                    workers[key] = Worker(spec, fresh_env(row.env, tmp), tmp, cores)
                else:
                    row.first_step_fresh = False
                w = workers[key]
                r = w.ask(cmd="setup", objective=row.objective)
                row.first_step_s, row.loss = r["first_step_s"], r["loss"]
                spc = r["steps_per_call"]
                # One more step to learn the step time; later rounds last about round_s.
                t = w.ask(cmd="run", objective=row.objective, calls=1)["seconds"]
                row.calibration_s = t / spc
                calls = max(1, min(500, round((row.round_s or round_s) / t)))
                live.append((row, w, calls, spc))
                log(f"  set up {row.label:44s} first step {row.first_step_s:6.1f} s, then {t * 1e3:8.1f} ms/call")
            except Exception as e:
                row.error = str(e).splitlines()[0][:200]
                log(f"  FAILED {row.label}: {e}")
        for k in range(rounds):
            order = live[k % len(live):] + live[: k % len(live)] if live else []
            for row, w, calls, spc in order:
                if row.error or (row.max_rounds is not None and len(row.step_s) >= row.max_rounds):
                    continue
                try:
                    r, background = timed_ask(w, cmd="run", objective=row.objective, calls=calls)
                    row.step_s.append(r["seconds"] / (calls * spc))
                    if background is not None:
                        row.background.append(background)
                    row.loss = r["loss"]
                except Exception as e:
                    row.error = str(e).splitlines()[0][:200]
            log(f"  round {k + 1}/{rounds} done")
        if info_objectives:
            for row, w, _, _ in live:
                if not row.error:
                    try:
                        row.info = w.ask(cmd="info", objective=row.objective)
                    except Exception as e:
                        row.info = {"error": str(e).splitlines()[0]}
    finally:
        for w in workers.values():
            w.close()
        if any(r.error for r in rows):
            log(f"  worker logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def write_data(size_list: list[Size], folder: Path) -> dict[str, str]:
    paths = {}
    for s in size_list:
        p = folder / f"data-{s.name}.npz"
        np.savez(p, **make_data(s))
        paths[s.name] = str(p)
    return paths


def matmul_peak_rows(size: Size) -> list[Row]:
    """Float32 matrix products of 2048 x 2048, in numpy and in XLA, timed in the
    same interleaved rounds as the steps, so that they see the same background
    load; the faster library's median rate is the peak that utilisation divides by."""
    return [Row(f"{size.name} matmul peak (numpy)", "matmul", "numpy", size, group=f"{size.name} peak"),
            Row(f"{size.name} matmul peak (jax)", "matmul", "jax", size, group=f"{size.name} peak")]


def peak_flops(rows: list[Row], best: bool = False) -> float | None:
    n = MATMUL_N
    rates = [2 * n**3 / (r.best_step_s if best else r.median_step_s) for r in rows if r.impl == "matmul" and r.step_s]
    return max(rates) if rates else None


MATMUL_N = 2048


class MatmulRunner(Runner):
    def __init__(self, lib: str):
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32) for _ in range(2))
        if lib == "jax":
            import jax
            import jax.numpy as jnp
            self.a, self.b = jnp.asarray(a), jnp.asarray(b)
            self.f = jax.jit(jnp.matmul)
        else:
            self.a, self.b, self.f = a, b, np.matmul

    def call(self, i):
        return self.f(self.a, self.b)

    def sync(self, pending):
        for p in pending:
            getattr(p, "block_until_ready", lambda: None)()
        return 0.0


def cpu_name() -> str:
    """The CPU's model name, as the benchmark tables print it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform

        return platform.processor() or platform.machine()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        from benchmarks.harness import serve as serve_here  # the package's copy, which the workers' modules import

        serve_here(json.loads(sys.argv[2]))
