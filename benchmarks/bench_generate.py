"""Decoding speed: learnjax's compiled sampler with a KV cache, against the same
loop without the cache, and against the same model in PyTorch eager with a
hand-written KV cache; and the time to the first token after loading a saved model.

    python -m benchmarks.bench_generate            # about two minutes
    python -m benchmarks.bench_generate --quick

Same sizes and sampling in both frameworks: a decoder of the generative
foundation model's shape with a longer context (so that a 16-token prompt can
grow by 64 tokens), random weights (speed does not depend on them), every row
writing all 64 tokens (no early stop at `[END]`). Tokens per second count new
tokens, after a warm-up call (compilation excluded); rounds interleave the
candidates so that background load slows them alike. PyTorch rows need
`pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import harness, timing

VOCAB, MAX_LEN, D_MODEL, LAYERS, HEADS, D_FF = 361, 128, 64, 2, 4, 128
PROMPT, NEW = 16, 64
RESULT = "FIRST-TOKEN "


def jax_candidates(batch: int, temperature: float) -> dict:
    import jax
    from flax import nnx

    from learnjax.models.generation import generate_tokens
    from learnjax.models.transformer import NextWordModel, TransformerConfig

    model = NextWordModel(TransformerConfig(VOCAB, MAX_LEN, D_MODEL, LAYERS, HEADS, D_FF), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    rows = np.zeros((batch, MAX_LEN), np.int32)
    rows[:, :PROMPT] = np.random.default_rng(0).integers(7, VOCAB, (batch, PROMPT))
    lengths = np.full(batch, PROMPT, np.int32)

    def call(use_cache: bool):
        return lambda: jax.block_until_ready(generate_tokens(
            state, rows, lengths, jax.random.key(0), np.int32(NEW), np.float32(temperature), np.int32(0), np.float32(1.0),
            graphdef=graphdef, use_cache=use_cache, stop_at_end=False))

    return {"learnjax, KV cache (compiled)": call(True), "learnjax, no cache (compiled)": call(False)}


def torch_candidates(batch: int, temperature: float) -> dict:
    """PyTorch eager at its default number of threads, and on one thread: small
    steps like these often run faster on one (no threads to wake and wait for),
    and the faster of the two is the fair baseline."""
    try:
        import torch
    except ImportError:
        return {}
    from benchmarks.torch_impl import NextWordModel

    torch.manual_seed(0)
    model = NextWordModel(VOCAB, MAX_LEN, D_MODEL, LAYERS, HEADS, D_FF).eval()
    prompts = torch.randint(7, VOCAB, (batch, PROMPT))
    generator = torch.Generator().manual_seed(0)
    default = torch.get_num_threads()

    def on(threads: int):
        def run():
            torch.set_num_threads(threads)
            try:
                return model.generate(prompts, NEW, temperature, generator)
            finally:
                torch.set_num_threads(default)
        return run

    return {f"PyTorch eager, KV cache ({default} threads)": on(default), "PyTorch eager, KV cache (1 thread)": on(1)}


def first_token_child(side: str) -> dict:
    """In a fresh process: load a saved model, then time until its first new token."""
    started = time.perf_counter()
    folder = Path(os.environ["BENCH_MODEL"])
    if side == "learnjax":
        from learnjax.models.generation import Sampling, continue_ids
        from learnjax.training.foundation import Foundation

        imported = time.perf_counter()
        foundation = Foundation.load(folder)
        loaded = time.perf_counter()
        continue_ids(foundation.model, [[3, 10, 11, 12]], max_new_tokens=1, sampling=Sampling())
    else:
        import torch

        from benchmarks.torch_impl import NextWordModel

        imported = time.perf_counter()
        model = NextWordModel(VOCAB, MAX_LEN, D_MODEL, LAYERS, HEADS, D_FF).eval()
        model.load_state_dict(torch.load(folder / "torch.pt"))
        loaded = time.perf_counter()
        model.generate(torch.tensor([[3, 10, 11, 12]]), 1)
    done = time.perf_counter()
    return {"import_s": imported - started, "load_s": loaded - imported, "first_token_s": done - loaded}


def first_token(have_torch: bool) -> dict:
    from flax import nnx

    from learnjax.models.transformer import NextWordModel, TransformerConfig
    from learnjax.storage.progress import History
    from learnjax.text.tokenizer import SPECIAL_TOKENS, Tokenizer
    from learnjax.training.foundation import Foundation

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = Tokenizer([*SPECIAL_TOKENS, *(f"w{i}" for i in range(VOCAB - len(SPECIAL_TOKENS)))])
        Foundation(NextWordModel(TransformerConfig(VOCAB, MAX_LEN, D_MODEL, LAYERS, HEADS, D_FF), rngs=nnx.Rngs(0)), tokenizer, History()).save(folder)
        sides = ["learnjax"]
        if have_torch:
            import torch

            from benchmarks.torch_impl import NextWordModel as TorchModel

            torch.save(TorchModel(VOCAB, MAX_LEN, D_MODEL, LAYERS, HEADS, D_FF).state_dict(), Path(folder) / "torch.pt")
            sides.append("torch")
        env = {**os.environ, "BENCH_MODEL": folder, "LEARNJAX_CACHE": tempfile.mkdtemp()}  # no compiled programs to reuse
        for side in sides:
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_generate", "--first-token", side],
                                  capture_output=True, text=True, env=env, cwd=harness.ROOT)
            line = next(line for line in done.stdout.splitlines() if line.startswith(RESULT))
            results[side] = json.loads(line[len(RESULT):])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--first-token", choices=["learnjax", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_token:
        print(RESULT + json.dumps(first_token_child(args.first_token)))
        return 0
    rounds = 3 if args.quick else 5
    print(f"{harness.cpu_name()}; decoder of d_model {D_MODEL}, {LAYERS} layers, vocabulary {VOCAB}; "
          f"prompt {PROMPT} tokens, {NEW} new tokens per row")
    have_torch = False
    for temperature in (0.0, 1.0):
        for batch in (1, 32):
            candidates = {**jax_candidates(batch, temperature), **torch_candidates(batch, temperature)}
            have_torch = have_torch or len(candidates) > 2
            for run in candidates.values():
                run()  # compiled and warm
            result = timing.compare(candidates, rounds=rounds, min_seconds=0.2)
            print(f"\ntemperature {temperature:g}, batch {batch}:")
            cached = result.seconds("learnjax, KV cache (compiled)")
            for name in result.rounds:
                seconds = result.seconds(name)
                line = f"  {name:<32} {batch * NEW / seconds:>10,.0f} new tokens/s"
                if name != "learnjax, KV cache (compiled)":
                    line += f"   learnjax cached is {seconds / cached:.2f}x this"
                print(line)
            torch_rows = [name for name in result.rounds if name.startswith("PyTorch")]
            if torch_rows:
                best = min(torch_rows, key=result.seconds)
                print(f"  against the faster PyTorch ({best.split('(')[1][:-1]}): learnjax cached is {result.seconds(best) / cached:.2f}x")
            else:
                print("  (PyTorch not installed: pip install -e '.[bench]')")
    print("\ntime to the first token after loading a saved model, in a fresh process (imports not counted):")
    for side, r in first_token(have_torch).items():
        print(f"  {side:<10} load {r['load_s']:.2f} s, first token {r['first_token_s']:.2f} s, total {r['load_s'] + r['first_token_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
