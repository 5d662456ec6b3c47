"""learnjax on real-sized text of one's own: a generated ~5 MB e-mail corpus
(`mail_corpus.py`), pre-trained on as `learnjax pretrain --corpus` does it.

    python -m benchmarks.own_data                  # the default pre-training, the tokenizers, tokens/s by vocabulary size
    python -m benchmarks.own_data --skip-pretrain  # the tables only (a few minutes)
    python -m benchmarks.own_data --mb 1 --vocab-sizes 1000 8000 --json out.json

Reports, with wall and CPU seconds (the machine is shared: CPU seconds say
what the work cost, wall seconds what it took beside everything else):

- the tokenizers' throughput in MB/s of UTF-8 text: the word-level vocabulary
  built while packing, the subword (WordPiece) vocabulary's training, and
  encoding with it (the `tokenizers` library alone, and packed into rows);
- tokens per second of masked-prediction training against the vocabulary's
  size (the output layer scores every token of the vocabulary at each hidden
  position): subword vocabularies of several sizes, and every word of the corpus;
- the default pre-training on the corpus, end to end: tokenizer, packing,
  compilation and the recipe's steps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.mail_corpus import write_mails
from benchmarks.timing import busy_cpu_seconds

VOCAB_SIZES = (1000, 2000, 4000, 8000, 16000, 32000)
TIMED_STEPS = 200


class Clock:
    """Wall and CPU seconds (this process's, every thread) of a block, and the
    cores the whole machine kept busy meanwhile."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu, self.busy = time.perf_counter(), time.process_time(), busy_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        busy = busy_cpu_seconds()
        self.machine_cores_busy = (busy - self.busy) / self.wall if busy is not None and self.busy is not None else None

    def to_dict(self) -> dict:
        return {"wall_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2),
                "machine_cores_busy": round(self.machine_cores_busy, 2) if self.machine_cores_busy is not None else None}


def tokenizer_throughput(path: Path) -> list[dict]:
    from learnjax.data.textfiles import TextLines
    from learnjax.text.subword import SubwordTokenizer
    from learnjax.text.tokenizer import Tokenizer

    megabytes = path.stat().st_size / 1e6
    texts = list(TextLines([path]))  # in memory: the rows time the tokenizers, not the disk
    rows = []

    def row(name: str, clock: Clock, **extra) -> None:
        rows.append({"what": name, "MB": round(megabytes, 2), "MB_per_s_wall": round(megabytes / clock.wall, 2),
                     "MB_per_s_cpu": round(megabytes / clock.cpu, 2), **clock.to_dict(), **extra})

    with Clock() as clock:
        word, tokens, _ = Tokenizer.from_texts_packed(texts, 32)
    row("word: vocabulary built while packing", clock, vocabulary=len(word))
    with Clock() as clock:
        subword = SubwordTokenizer.train(texts)
    row("subword: WordPiece training (tokenizers)", clock, vocabulary=len(subword))
    with Clock() as clock:
        subword.backend.encode_batch_fast(texts, add_special_tokens=False)
    row("subword: encoding (tokenizers alone)", clock)
    with Clock() as clock:
        tokens, segments = subword.encode_packed(texts, 32)
    row("subword: encoding, packed into rows", clock, tokens=int((segments > 0).sum()))
    return rows


def tokens_per_second(path: Path, vocab_sizes: tuple[int, ...], steps: int) -> list[dict]:
    """Masked-prediction training speed of the default recipe's model at each
    vocabulary size; the step compiles first (not timed)."""
    import jax

    from learnjax.data.textfiles import TextLines
    from learnjax.models.transformer import TransformerConfig
    from learnjax.training.loops import adamw, train_masked_prediction
    from learnjax.training.pretraining import corpus_rows, create_model_and_optimizer, model_shapes
    from learnjax.training.recipe import PretrainRecipe

    texts = list(TextLines([path]))
    rows = []
    for tokenizer, vocab in [*(("subword", v) for v in vocab_sizes), ("word", 10**9)]:
        recipe = PretrainRecipe(tokenizer=tokenizer, vocab_size=vocab, steps=steps)
        tok, tokens, segments = corpus_rows(recipe, texts, None, None, False)
        config = TransformerConfig(len(tok), recipe.max_len, recipe.d_model, recipe.n_layers, recipe.n_heads, recipe.d_ff)
        tx = adamw(steps, recipe.warmup_steps)
        model, optimizer = create_model_and_optimizer(config, tx, jax.random.key(0), recipe.learning_rate, model_shapes(config, tx))
        options = {"batch_size": recipe.batch_size, "mask_rate": recipe.mask_rate}
        train_masked_prediction(model, optimizer, tokens, segments, steps=20, **options)  # compiles
        with Clock() as clock:
            train_masked_prediction(model, optimizer, tokens, segments, steps=steps, **options)
        trained = steps * recipe.batch_size * recipe.max_len
        rows.append({"tokenizer": tokenizer, "vocabulary": len(tok), "steps": steps, "tokens_per_s_wall": round(trained / clock.wall),
                     "tokens_per_s_cpu": round(trained / clock.cpu), "ms_per_step": round(1000 * clock.wall / steps, 1), **clock.to_dict()})
        lines = _table([rows[-1]]).splitlines()
        print("\n".join(lines if len(rows) == 1 else lines[-1:]), flush=True)  # the header before the first row
    return rows


def default_pretraining(path: Path) -> dict:
    """`learnjax pretrain --corpus PATH --out DIR`, as the command runs it (its
    defaults: the recipe `corpus_recipe` chooses from the corpus), end to end."""
    from learnjax.cli import main

    with tempfile.TemporaryDirectory() as out, Clock() as clock:
        assert main(["pretrain", "--corpus", str(path), "--json", "--out", out]) == 0
        report = json.loads((Path(out) / "learnjax.json").read_text())["metadata"]["recipe"]
    trained = report["steps"] * report["batch_size"] * report["max_len"]
    return {"recipe": report, **clock.to_dict(), "training_tokens": trained, "tokens_per_s_end_to_end": round(trained / clock.wall)}


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    return "\n".join([" | ".join(keys), " | ".join("---" for _ in keys), *(" | ".join(str(r.get(k, "")) for k in keys) for r in rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="size of the generated corpus (default: 5)")
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=list(VOCAB_SIZES))
    parser.add_argument("--steps", type=int, default=TIMED_STEPS, help="timed steps per vocabulary size")
    parser.add_argument("--skip-pretrain", action="store_true", help="skip the end-to-end default pre-training")
    parser.add_argument("--json", type=Path, help="also write every measurement there")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mails.txt"
        with Clock() as clock:
            results["corpus"] = write_mails(path, args.mb)
        print(f"corpus: {results['corpus']['messages']} messages, {results['corpus']['bytes'] / 1e6:.1f} MB, written in {clock.wall:.1f} s\n")
        results["tokenizers"] = tokenizer_throughput(path)
        print(_table(results["tokenizers"]) + "\n", flush=True)
        print("training speed by vocabulary size (masked prediction, default recipe: d_model 64, 2 layers, rows of 32, batch 64)")
        results["vocabulary"] = tokens_per_second(path, tuple(args.vocab_sizes), args.steps)
        if not args.skip_pretrain:
            results["pretraining"] = default_pretraining(path)
            p = results["pretraining"]
            print(f"\ndefault pre-training (`learnjax pretrain --corpus mails.txt`): {p['wall_s']} s wall, {p['cpu_s']} s CPU, "
                  f"{p['tokens_per_s_end_to_end']} training tokens/s end to end; machine cores busy: {p['machine_cores_busy']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
