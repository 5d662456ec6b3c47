"""Which fine-tuning recipe makes a model pre-trained on mail pay at few labels?

    python -m benchmarks.mail_finetuning MODEL_DIR [--labels 32] [--seeds 0 1 2] [--variants cls-lr0.001-s80 ...] [--log runs.jsonl]
    python -m benchmarks.mail_finetuning --from-log runs.jsonl   # the tables again

MODEL_DIR is a model of `learnjax pretrain --corpus` on `learnjax.data.mail`'s
mail (`python -m benchmarks.real_mail --keep MODEL_DIR`): pre-trained once,
fine-tuned here under every variant. Each variant fine-tunes it (`full`) and
the same architecture from random weights (`scratch`) with the same head and
recipe, on the same balanced labeled subsets as `benchmarks.real_mail` (its
pool, dev and test sets), reading every window of a message as
`learnjax finetune` does; TF-IDF + logistic regression on the same subsets.
A variant is:

- pooling: the head reads the `[CLS]` vector (the library's
  `EncoderClassifier`) or the mean of the vectors of the tokens that are not
  padding (masked mean pooling);
- the peak learning rate, the steps, and the encoder's rate as a share of the
  head's (`encoder_scale`);
- `head_steps`: a head-first warm-up ("LP-FT": the head alone on the frozen
  encoder for that many steps, at the same rate, then everything), as the
  library's `warm_up_head` runs it.

`cls-lr0.001-s80-head80` is what `learnjax finetune` does by default
(`FinetuneSettings`); `cls-lr0.001-s80`, the same without the warm-up.

At 32 labels one fine-tuning seed moves a run by several points: `--finetune-seeds`
fine-tunes each subset with several. Prints dev and test accuracy of each
variant and mode, mean over the subsets (and fine-tuning seeds),
and, for each pooling and mode, the variant that the dev set chooses
(the rule the test set never sees) with its test accuracy.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from learnjax.data.mail import MailWriter, balanced_mails
from learnjax.experiments.tfidf_baseline import tfidf_accuracy
from learnjax.models.transformer import EncoderClassifier, Transformer
from learnjax.text.tokenizer import PAD_ID
from learnjax.training.finetuning import FinetuneSettings, TextClassifier, training_rows, warm_up_head
from learnjax.training.foundation import Foundation
from learnjax.training.loops import adamw, check_learning_rate, train_classifier

POOL, DEV, TEST = 2000, 300, 1000  # as benchmarks.real_mail


class MeanPooledClassifier(EncoderClassifier):
    """`EncoderClassifier` whose head reads the mean of the non-padding tokens' vectors ([CLS] included)."""

    def row_features(self, rows: jax.Array) -> jax.Array:
        hidden = self.encoder(rows)  # (B, T, D)
        keep = (rows != PAD_ID)[..., None].astype(hidden.dtype)
        return (hidden * keep).sum(1) / jnp.maximum(keep.sum(1), 1.0)


@dataclass(frozen=True)
class Variant:
    pooling: str = "cls"  # or "mean"
    learning_rate: float = 1e-3
    steps: int = 80
    head_steps: int = 0
    encoder_scale: float = 1.0

    @property
    def name(self) -> str:
        name = f"{self.pooling}-lr{self.learning_rate:g}-s{self.steps}"
        if self.head_steps:
            name += f"-head{self.head_steps}"
        if self.encoder_scale != 1.0:
            name += f"-enc{self.encoder_scale:g}"
        return name


def _variants() -> dict[str, Variant]:
    found = {}
    for pooling in ("cls", "mean"):
        for lr in (3e-4, 1e-3, 2.5e-3, 5e-3, 1e-2):
            for steps in (40, 80, 160):
                found[Variant(pooling, lr, steps).name] = Variant(pooling, lr, steps)
                for head_steps in (40, 80):
                    v = Variant(pooling, lr, steps, head_steps)
                    found[v.name] = v
                for scale in (0.1, 0.3):
                    v = Variant(pooling, lr, steps, 0, scale)
                    found[v.name] = v
                    v = Variant(pooling, lr, steps, 40, scale)
                    found[v.name] = v
    return found


VARIANTS = _variants()


@functools.lru_cache(maxsize=64)
def _scaled_adamw(steps: int, warmup_steps: int, weight_decay: float, encoder_scale: float) -> optax.GradientTransformation:
    """`loops.adamw`, then the encoder's updates scaled by `encoder_scale` (one object per setting: one compiled step)."""

    def in_encoder(params):
        return jax.tree_util.tree_map_with_path(lambda path, _: any(getattr(k, "key", None) == "encoder" for k in path), params)

    return optax.chain(adamw(steps, warmup_steps, weight_decay), optax.masked(optax.scale(encoder_scale), in_encoder))


def _optimizer(model, steps: int, settings: FinetuneSettings, learning_rate: float, wrt, encoder_scale: float = 1.0) -> nnx.Optimizer:
    if encoder_scale == 1.0:
        tx = adamw(steps, settings.warmup_steps, settings.weight_decay)
        optimizer = nnx.Optimizer(model, tx, wrt=wrt)
        optimizer.opt_state.hyperparams["learning_rate"][...] = jnp.float32(check_learning_rate(learning_rate))
    else:
        tx = _scaled_adamw(steps, settings.warmup_steps, settings.weight_decay, encoder_scale)
        optimizer = nnx.Optimizer(model, tx, wrt=wrt)
        optimizer.opt_state[0].hyperparams["learning_rate"][...] = jnp.float32(check_learning_rate(learning_rate))
    return optimizer


def fine_tuned(foundation: Foundation, texts, labels, mode: str, variant: Variant, seed: int) -> TextClassifier:
    """A classifier fine-tuned as `learnjax finetune` does (`finetune`), under `variant`."""
    settings = replace(FinetuneSettings(), learning_rate=variant.learning_rate, steps=variant.steps)
    names = tuple(sorted(set(labels)))
    label_ids = np.array([names.index(label) for label in labels], np.int32)
    tokens = training_rows(foundation.tokenizer, texts, foundation.model.config.max_len, settings)
    rngs = nnx.Rngs(seed)
    encoder = Transformer(foundation.model.config, rngs=rngs) if mode == "scratch" else nnx.clone(foundation.model.encoder)
    model = (MeanPooledClassifier if variant.pooling == "mean" else EncoderClassifier)(encoder, len(names), rngs=rngs)
    if variant.head_steps:
        warm_up_head(model, tokens, label_ids, replace(settings, head_steps=variant.head_steps), seed)
    optimizer = _optimizer(model, variant.steps, settings, variant.learning_rate, nnx.Param, variant.encoder_scale)
    history = train_classifier(model, optimizer, tokens, label_ids, steps=variant.steps, batch_size=settings.batch_size, seed=seed)
    return TextClassifier(model, foundation.tokenizer, names, mode, history, settings.windows)


def _accuracy(classifier: TextClassifier, mails) -> float:
    predicted = classifier.predict_proba([m.text for m in mails]).argmax(1)
    return round(float(np.mean([classifier.labels[i] == m.label for i, m in zip(predicted, mails)])), 4)


def run(model_dir: Path, variants: list[Variant], label_sizes, seeds, finetune_seeds=None, log=None) -> list[dict]:
    foundation = Foundation.load(model_dir)
    labeled = MailWriter(0, 1).labeled(POOL + DEV)
    pool, dev, test = labeled[:POOL], labeled[POOL:], MailWriter(0, 2).labeled(TEST)
    rows = []
    for n in label_sizes:
        for seed in seeds:
            train = balanced_mails(pool, n, seed)
            texts, labels = [m.text for m in train], [m.label for m in train]
            tfidf = tfidf_accuracy(train, dev, test)
            for variant, mode, finetune_seed in itertools.product(variants, ("full", "scratch"), finetune_seeds or [seed]):
                started = time.perf_counter()
                classifier = fine_tuned(foundation, texts, labels, mode, variant, finetune_seed)
                row = {"variant": variant.name, **asdict(variant), "mode": mode, "labels": n, "seed": seed, "finetune_seed": finetune_seed,
                       "dev": _accuracy(classifier, dev), "test": _accuracy(classifier, test), "tfidf": tfidf,
                       "seconds": round(time.perf_counter() - started, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if log:
                    with open(log, "a") as f:
                        f.write(json.dumps(row) + "\n")
    return rows


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows) if rows else float("nan")


def summary(rows: list[dict]) -> str:
    """Mean dev and test accuracy by labels, variant and mode; then, for each
    pooling and mode, the variant of the best mean dev accuracy (the test set
    chooses nothing) and its test accuracy."""
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["labels"], r["variant"]), {}).setdefault(r["mode"], []).append(r)
    lines = ["labels | variant | runs | pre-trained dev / test | scratch dev / test | TF-IDF test | pre-trained - scratch (test)"]
    for (n, name), by_mode in sorted(cells.items()):
        full, scratch = by_mode.get("full", []), by_mode.get("scratch", [])
        lines.append(f"{n} | {name} | {len(full)} | {_mean(full, 'dev'):.1%} / {_mean(full, 'test'):.1%} | "
                     f"{_mean(scratch, 'dev'):.1%} / {_mean(scratch, 'test'):.1%} | {_mean(full, 'tfidf'):.1%} | "
                     f"{100 * (_mean(full, 'test') - _mean(scratch, 'test')):+.1f}")
    lines += ["", "chosen on the dev set, among the variants run on every subset:",
              "labels | pooling | pre-trained: variant, test | scratch: variant, test | TF-IDF test | pre-trained - scratch"]
    for n, pooling in sorted({(r["labels"], r["pooling"]) for r in rows}):
        most = max(len(by_mode.get("full", [])) for (m, _), by_mode in cells.items() if m == n)
        best = {}
        for mode in ("full", "scratch"):
            runs = [by_mode[mode] for (m, _), by_mode in cells.items()
                    if m == n and by_mode.get(mode) and by_mode[mode][0]["pooling"] == pooling and len(by_mode[mode]) == most]
            best[mode] = max(runs, key=lambda rs: _mean(rs, "dev"), default=[])
        if best["full"] and best["scratch"]:
            full, scratch = best["full"], best["scratch"]
            lines.append(f"{n} | {pooling} | {full[0]['variant']}, {_mean(full, 'test'):.1%} | {scratch[0]['variant']}, "
                         f"{_mean(scratch, 'test'):.1%} | {_mean(full, 'tfidf'):.1%} | {100 * (_mean(full, 'test') - _mean(scratch, 'test')):+.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", help="the pre-trained model (not with --from-log)")
    parser.add_argument("--labels", type=int, nargs="+", default=[32])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="labeled subsets (balanced_mails seeds)")
    parser.add_argument("--finetune-seeds", type=int, nargs="+",
                        help="fine-tune each subset with each of these seeds (head's weights, batch order; `learnjax finetune` uses 0); "
                             "default: the subset's seed")
    parser.add_argument("--variants", nargs="+", default=["cls-lr0.001-s80-head80", "cls-lr0.001-s80"], help=f"of: {', '.join(VARIANTS)}")
    parser.add_argument("--log", type=Path, help="append each run's row there as it finishes (JSON lines)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--from-log", type=Path, help="only print the tables of the runs a --log holds")
    args = parser.parse_args(argv)
    if args.from_log:
        print(summary([json.loads(line) for line in args.from_log.read_text(encoding="utf-8").splitlines() if line.strip()]))
        return
    if args.model is None:
        parser.error("give the pre-trained model's directory (or --from-log)")
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; names look like {next(iter(VARIANTS))}")
    rows = run(args.model, [VARIANTS[name] for name in args.variants], args.labels, args.seeds, args.finetune_seeds, args.log)
    print("\n" + summary(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
