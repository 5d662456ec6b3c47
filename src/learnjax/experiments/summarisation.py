"""Summarisation: instruction tuning (`learnjax.training.instruction_tuning`) on
diaries and their summaries (`learnjax.data.diaries`), from the generative
foundation model and from random weights, by number of examples.

Two measures of each summary of a held-out person's diary: ROUGE-L, the
field's word-overlap score (the `rouge-score` package), and the fact check
that only a world of known facts allows (`diaries.check_summary`). The
summary's new words ("summarise", "twice") join the vocabulary after the old
ones, with new rows (`pretraining.with_vocabulary`), for both modes alike.
"""

from __future__ import annotations

from learnjax.data import diaries
from learnjax.storage.cache import cached_json

SIZES = (16, 64, 256)
SEEDS = (0, 1, 2)
LEARNING_RATES = (1e-3, 3e-3)
MODES = ("full", "scratch")
MODE_NAMES = {"full": "fine-tuned foundation", "scratch": "from scratch"}
DEV_DIARIES, TEST_DIARIES = 64, 128


def general_foundation():
    """The generative foundation model (`pretraining.NEXT_WORD_RECIPE`)."""
    from learnjax.training.pretraining import foundation_model
    from learnjax.training.recipe import NEXT_WORD_RECIPE

    return foundation_model(NEXT_WORD_RECIPE)


def summarising_foundation():
    """The generative foundation model, its vocabulary grown by the words the
    diaries and summaries use that its corpus never did."""
    from learnjax.training.foundation import Foundation
    from learnjax.training.pretraining import with_vocabulary

    foundation = general_foundation()
    texts = [f"{e.prompt} {e.response}" for split in ("train", "dev", "held_out") for e in map(diaries.Diary.example, diaries.diaries(split, 256))]
    tokenizer = foundation.tokenizer.extended(foundation.tokenizer.unknown_words(texts))
    return Foundation(with_vocabulary(foundation.model, len(tokenizer)), tokenizer, foundation.history, foundation.recipe)


def summarise(assistant, read: list[diaries.Diary]) -> list[str]:
    """The assistant's summary of each diary (greedy), as long as the longest rule summary allows."""
    longest = max(len(assistant.tokenizer.encode(d.summary)) for d in read) + 1  # and its [END]
    return assistant.answer([d.example().prompt for d in read], max_new_tokens=longest)


def score_summaries(summaries: list[str], read: list[diaries.Diary]) -> dict:
    """Mean ROUGE-L F1 against the rule's summaries, the fact check's shares
    (all right; the week right, the person aside), each fault's share, and the
    fact check by diary length."""
    import numpy as np
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [scorer.score(d.summary, s)["rougeL"].fmeasure for d, s in zip(read, summaries)]
    checks = [diaries.check_summary(d, s) for d, s in zip(read, summaries)]
    lengths = sorted({len(d.entries) for d in read})
    return {
        "rouge_l": float(np.mean(rouge)),
        "correct": float(np.mean([c["correct"] for c in checks])),
        "week_right": float(np.mean([c["week_right"] for c in checks])),
        "faults": {f: float(np.mean([f in c["faults"] for c in checks])) for f in diaries.FAULTS},
        "week_right_by_days": {str(n): float(np.mean([c["week_right"] for c, d in zip(checks, read) if len(d.entries) == n])) for n in lengths},
    }


def _summarisation(sizes: tuple[int, ...], seeds: tuple[int, ...], learning_rates: tuple[float, ...]) -> dict:
    import dataclasses
    import functools
    import time

    import numpy as np

    from learnjax.experiments.dev_choice import choose_on_dev
    from learnjax.experiments.tuned_runs import tuned_assistant
    from learnjax.training.sft import SFTSettings

    started = time.perf_counter()
    foundation = summarising_foundation()
    dev, test = diaries.diaries("dev", DEV_DIARIES), diaries.diaries("held_out", TEST_DIARIES)
    base = SFTSettings()

    def tuned(mode: str, n: int, seed: int, learning_rate: float):
        return tuned_assistant(
            foundation, diaries.training_examples(n, seed), mode=mode, seed=seed, settings=dataclasses.replace(base, learning_rate=learning_rate)
        )

    def on_dev(assistant) -> tuple[float, float]:
        """How the rate is chosen: the dev people's fact check, ROUGE-L to break ties."""
        scores = score_summaries(summarise(assistant, dev), dev)
        return scores["week_right"], scores["rouge_l"]

    rows, chosen = [], {}
    for mode in MODES:
        for n in sizes:
            began = time.perf_counter()
            best, runs, _ = choose_on_dev(functools.partial(tuned, mode, n), learning_rates, seeds, on_dev)
            scores = [score_summaries(summarise(a, test), test) for a in runs]
            chosen[mode, n] = runs[0]
            rows.append(
                {
                    "mode": mode,
                    "n_examples": n,
                    "learning_rate": best,
                    **{key: float(np.mean([s[key] for s in scores])) for key in ("rouge_l", "week_right", "correct")},
                    "rouge_l_std": float(np.std([s["rouge_l"] for s in scores])),
                    "week_right_std": float(np.std([s["week_right"] for s in scores])),
                    "faults": {f: float(np.mean([s["faults"][f] for s in scores])) for f in diaries.FAULTS},
                    "week_right_by_days": {k: float(np.mean([s["week_right_by_days"][k] for s in scores])) for k in scores[0]["week_right_by_days"]},
                    "seconds": time.perf_counter() - began,
                }
            )
    n = sizes[-1]
    shown = test[:8]
    written = {mode: summarise(chosen[mode, n], shown) for mode in MODES}
    transcripts = [
        {"diary": d.text, "rule": d.summary, **{mode: {"summary": written[mode][i], **diaries.check_summary(d, written[mode][i])} for mode in MODES}}
        for i, d in enumerate(shown)
    ]
    return {
        "rows": rows,
        "transcripts": transcripts,
        "sizes": list(sizes),
        "seeds": list(seeds),
        "learning_rates": list(learning_rates),
        "new_words": foundation.tokenizer.vocab[len(general_foundation().tokenizer) :],
        "people": {split: list(people) for split, people in diaries.people_splits().items()},
        "diaries": {"dev": len(dev), "held_out": len(test)},
        "settings": dataclasses.asdict(base),
        "runs": len(MODES) * len(sizes) * (len(learning_rates) + len(seeds) - 1),
        "seconds": time.perf_counter() - started,
    }


def summarisation(sizes: tuple[int, ...] = SIZES, seeds: tuple[int, ...] = SEEDS, learning_rates: tuple[float, ...] = LEARNING_RATES) -> dict:
    """ROUGE-L and the fact check of held-out people's diary summaries, after
    instruction tuning the generative foundation and the same model from
    scratch on `sizes` examples; the rate chosen per cell on dev, 3 seeds."""
    params = {"sizes": tuple(sizes), "seeds": tuple(seeds), "learning_rates": tuple(learning_rates)}
    return cached_json("summarisation", params, _summarisation)


def summarisation_table(result: dict) -> str:
    """One row per number of examples: ROUGE-L and the week's facts right, per mode."""
    from learnjax.site.render import table

    cell = {(r["mode"], r["n_examples"]): r for r in result["rows"]}
    header = ["examples", *(f"{MODE_NAMES[m]}: {what}" for m in MODES for what in ("ROUGE-L", "facts right"))]
    return table(
        header,
        [
            (
                n,
                *(
                    value
                    for m in MODES
                    for value in (
                        f"{cell[m, n]['rouge_l']:.2f} ± {cell[m, n]['rouge_l_std']:.2f}",
                        f"{cell[m, n]['week_right']:.0%} ± {cell[m, n]['week_right_std']:.0%}",
                    )
                ),
            )
            for n in result["sizes"]
        ],
    )
