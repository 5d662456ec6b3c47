"""Knowing versus saying: measures the instruction-tuning claims on this machine.

For each foundation (plain corpus, mixed corpus with FAQ text about the train
entities): its pre-training time, what it knows of the held-out facts in corpus
phrasing, and what it says when asked in the chat template: untuned, after full
SFT, and (once) after SFT from random weights. The learning rate is chosen on
the dev split; the held-out split is scored once per setting.

    PYTHONPATH=src LEARNJAX_CACHE=... python benchmarks/instruction_tuning_research.py [--examples 256] [--lrs 3e-4,1e-3,3e-3] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from learnjax import instructions
from learnjax.cache import foundation_model
from learnjax.instruction_tuning import SFTSettings, instruction_tune, knows, score_answers, untuned
from learnjax.pretraining import MIXED_RECIPE, NEXT_WORD_RECIPE


def says(assistant, examples) -> dict:
    return score_answers(assistant.answer([e.prompt for e in examples]), examples)


def kinds(score: dict) -> str:
    return " ".join(f"{k}={v['exact']:.2f}" for k, v in score["per_kind"].items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--lrs", default="3e-4,1e-3,3e-3")
    parser.add_argument("--steps", type=int, default=SFTSettings().steps)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--scratch-lrs", default="1e-3,3e-3")
    parser.add_argument("--lora-lrs", default="", help="also LoRA at these learning rates")
    parser.add_argument("--only", default="plain,mixed")
    parser.add_argument("--show", type=int, default=0, help="wrong held-out answers to print per foundation")
    parser.add_argument("--pretrain-seed", type=int, default=NEXT_WORD_RECIPE.seed, help="seed of both foundations' pre-training")
    parser.add_argument("--faq-share", type=float, default=MIXED_RECIPE.faq_share)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    lrs = [float(x) for x in args.lrs.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    held, dev = instructions.questions("held_out"), instructions.questions("dev")
    held_facts = instructions.facts_of("held_out")
    splits = instructions.entity_splits()
    print(f"entities: train {len(splits['train'])} dev {len(splits['dev'])} held-out {len(splits['held_out'])};"
          f" questions: held-out {len(held)} dev {len(dev)}")
    results = {}
    scratch_done = False
    recipes = {"plain": NEXT_WORD_RECIPE.replace(seed=args.pretrain_seed),
               "mixed": MIXED_RECIPE.replace(seed=args.pretrain_seed, faq_share=args.faq_share)}
    for name, recipe in recipes.items():
        if name not in args.only.split(","):
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        foundation = foundation_model(recipe, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        known = knows(foundation, held_facts)
        before = says(untuned(foundation), held)
        print(f"{name}: pre-training {foundation.seconds:.0f} s wall (this call {wall:.0f} s wall, {cpu:.0f} s cpu);"
              f" knows {known['known']:.2f} ({' '.join(f'{k}={v:.2f}' for k, v in known['per_kind'].items())});"
              f" untuned says {before['exact']:.2f}", flush=True)
        row = {"pretrain_seconds": foundation.seconds, "pretrain_cpu_this_call": cpu, "knows": known, "untuned": before, "sft": {}}
        modes = [("full", lrs)] + ([("lora", [float(x) for x in args.lora_lrs.split(",")])] if args.lora_lrs else []) + ([("scratch", [float(x) for x in args.scratch_lrs.split(",")])] if not scratch_done and args.scratch_lrs else [])
        for mode, mode_lrs in modes:
            best = None
            for lr in mode_lrs:
                settings = SFTSettings(learning_rate=lr, steps=args.steps)
                dev_scores, held_scores, cpu = [], [], time.process_time()
                for seed in seeds:
                    assistant = instruction_tune(foundation, instructions.training_examples(args.examples, seed), mode=mode,
                                                 settings=settings, seed=seed)
                    dev_scores.append(says(assistant, dev))
                    held_scores.append(says(assistant, held))
                cpu = (time.process_time() - cpu) / len(seeds)
                d, h = np.mean([s["exact"] for s in dev_scores]), np.mean([s["exact"] for s in held_scores])
                print(f"  {mode:7s} lr {lr:.0e}: dev {d:.2f} held-out {h:.2f} ±{np.std([s['exact'] for s in held_scores]):.2f}"
                      f" [{kinds(held_scores[0])}] ({cpu:.0f} s cpu per run)", flush=True)
                if best is None or d > best[0]:
                    best = (d, lr, h, held_scores, assistant)
            print(f"  {mode:7s} chosen on dev: lr {best[1]:.0e} -> held-out exact {best[2]:.2f}", flush=True)
            row["sft"][mode] = {"lr": best[1], "dev": best[0], "held_out": best[2], "per_seed": [s["exact"] for s in best[3]],
                                "per_kind": {k: float(np.mean([s["per_kind"][k]["exact"] for s in best[3]])) for k in best[3][0]["per_kind"]}}
            if args.show and mode == "full":
                answers = best[4].answer([e.prompt for e in held])
                wrong = [(e, a) for e, a in zip(held, answers) if a != e.response]
                for e, a in wrong[: args.show]:
                    print(f"      {e.prompt} -> {a} | want {e.response}")
        scratch_done = scratch_done or args.scratch_lrs != ""
        results[name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
