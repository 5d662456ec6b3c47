"""Knowing versus saying: the instruction-tuning claims, measured on this machine.

For each generative foundation (the plain corpus; the mixed corpus, a share of
whose texts are FAQ text about the instruction-tuning train entities) it prints:
the seconds pre-training took (wall, as the cache recorded it, and the CPU time
of this call when it trained), what the model *knows* of the held-out facts in
the corpus's own phrasing, what it *says* when asked in the chat template before
fine-tuning, and after SFT: full fine-tuning, optionally LoRA, and (once) the
same architecture from random weights. Each mode's learning rate is chosen on
the dev split (mean over the seeds); the held-out split, every category at its
natural weight, is reported for every rate and for the chosen one.
`--faq-probe` also asks the mixed model in the FAQ's own format, no
fine-tuning: what the FAQ text alone made extractable.

    PYTHONPATH=src LEARNJAX_CACHE=... python benchmarks/instruction_tuning_research.py            # about 6 minutes with cached foundations
    ... --examples 64 --lrs 3e-4,1e-3 --seeds 0,1,2 --lora-lrs 1e-3,3e-3 --pretrain-seed 1 --faq-share 0.15 --show 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from learnjax.data import questions
from learnjax.models.generation import join_words
from learnjax.training.writing import generate_text
from learnjax.training.instruction_tuning import SFTSettings, instruction_tune, knows, score_answers, untuned
from learnjax.training.pretraining import foundation_model
from learnjax.training.recipe import MIXED_RECIPE, NEXT_WORD_RECIPE


def says(assistant, examples) -> dict:
    return score_answers(assistant.answer([e.prompt for e in examples]), examples)


def per_kind(score: dict) -> str:
    return " ".join(f"{kind}={s['exact']:.2f}" for kind, s in score["per_kind"].items())


def faq_probe(foundation, examples) -> dict:
    """Exact match when asked as the FAQ text asks ("Question: ... Answer:")."""
    generated = generate_text(foundation, [f"Question: {e.prompt} Answer:" for e in examples], max_new_tokens=10)
    answers = [join_words(g.tokens[: g.tokens.index("[END]")] if "[END]" in g.tokens else g.tokens) for g in generated]
    return score_answers(answers, examples)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def tune(foundation, mode, lrs, args, dev, held) -> dict:
    """`mode` at each rate and seed; the rate with the best mean dev score."""
    rows = []
    for lr in lrs:
        dev_scores, held_scores, cpu = [], [], time.process_time()
        for seed in args.seeds:
            assistant = instruction_tune(foundation, questions.training_examples(args.examples, seed), mode=mode,
                                         settings=SFTSettings(learning_rate=lr, steps=args.steps), seed=seed)
            dev_scores.append(says(assistant, dev))
            held_scores.append(says(assistant, held))
        cpu = (time.process_time() - cpu) / len(args.seeds)
        exact = [s["exact"] for s in held_scores]
        row = {"lr": lr, "dev": float(np.mean([s["exact"] for s in dev_scores])), "held_out": float(np.mean(exact)),
               "held_out_std": float(np.std(exact)), "per_seed": exact, "cpu_seconds_per_run": cpu,
               "per_kind": {k: float(np.mean([s["per_kind"][k]["exact"] for s in held_scores])) for k in held_scores[0]["per_kind"]},
               "last": assistant}
        print(f"  {mode:7s} lr {lr:.0e}: dev {row['dev']:.2f}  held-out {row['held_out']:.2f} ±{row['held_out_std']:.2f}"
              f"  [{' '.join(f'{k}={v:.2f}' for k, v in row['per_kind'].items())}]  ({cpu:.1f} s cpu per run)", flush=True)
        rows.append(row)
    best = max(rows, key=lambda r: r["dev"])
    print(f"  {mode:7s} chosen on dev: lr {best['lr']:.0e} -> held-out exact {best['held_out']:.2f} ±{best['held_out_std']:.2f}", flush=True)
    if args.show:
        answers = best["last"].answer([e.prompt for e in held])
        for e, a in [(e, a) for e, a in zip(held, answers) if a != e.response][: args.show]:
            print(f"      {e.prompt} -> {a} | want {e.response}")
    strip = lambda r: {k: v for k, v in r.items() if k != "last"}  # noqa: E731
    return {"chosen": strip(best), "rates": [strip(r) for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=256, help="instruction examples (train entities only)")
    parser.add_argument("--lrs", type=floats, default=floats("1e-4,3e-4,1e-3,3e-3"), help="full fine-tuning's rates")
    parser.add_argument("--lora-lrs", type=floats, default=[], help="also LoRA at these rates")
    parser.add_argument("--scratch-lrs", type=floats, default=floats("1e-3,3e-3"), help="random weights' rates (empty: skip)")
    parser.add_argument("--steps", type=int, default=SFTSettings().steps)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--pretrain-seed", type=int, default=NEXT_WORD_RECIPE.seed, help="both foundations' pre-training seed")
    parser.add_argument("--faq-share", type=float, default=MIXED_RECIPE.faq_share)
    parser.add_argument("--only", default="plain,mixed", help="foundations to measure")
    parser.add_argument("--faq-probe", action="store_true")
    parser.add_argument("--show", type=int, default=0, help="wrong held-out answers to print per mode")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    held, dev = questions.questions("held_out"), questions.questions("dev")
    splits = questions.entity_splits()
    print(f"entities: train {len(splits['train'])}, dev {len(splits['dev'])}, held-out {len(splits['held_out'])};"
          f" questions: held-out {len(held)}, dev {len(dev)}; {args.examples} examples, {args.steps} steps, seeds {args.seeds}")
    recipes = {"plain": NEXT_WORD_RECIPE.replace(seed=args.pretrain_seed),
               "mixed": MIXED_RECIPE.replace(seed=args.pretrain_seed, faq_share=args.faq_share)}
    results, scratch_done = {}, not args.scratch_lrs
    for name in args.only.split(","):
        wall, cpu = time.perf_counter(), time.process_time()
        foundation = foundation_model(recipes[name], progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        known = knows(foundation, questions.facts_of("held_out"))
        before = says(untuned(foundation), held)
        trained_now = f", {cpu:.0f} s cpu in this call" if wall > 5 else ""
        print(f"{name}: pre-training {foundation.seconds:.0f} s wall{trained_now}; knows {known['known']:.2f}"
              f" ({' '.join(f'{k}={v:.2f}' for k, v in known['per_kind'].items())}); untuned says {before['exact']:.2f}", flush=True)
        row = {"recipe": recipes[name].to_dict(), "pretrain_seconds": foundation.seconds, "knows": known, "untuned": before["exact"]}
        if args.faq_probe and name == "mixed":
            probe = faq_probe(foundation, held)
            row["faq_format"] = probe
            print(f"  asked in the FAQ's format, no fine-tuning: {probe['exact']:.2f} [{per_kind(probe)}]")
        modes = [("full", args.lrs)] + ([("lora", args.lora_lrs)] if args.lora_lrs else []) + ([] if scratch_done else [("scratch", args.scratch_lrs)])
        for mode, lrs in modes:
            row[mode] = tune(foundation, mode, lrs, args, dev, held)
        scratch_done = True
        results[name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
