"""A specialist assistant: continued pre-training of the generative foundation
on a clinic's notes (`learnjax.data.clinic`), then instruction tuning
(`learnjax.training.instruction_tuning`); against the general foundation,
instruction-tuned on the same examples.

Both start from the assistant's foundation (`instruction_tuning.ASSISTANT_RECIPE`:
the generative foundation whose corpus holds question-and-answer text, from
which tuning can surface what pre-training stored; from the plain one, tuning
on so few questions teaches their answers by heart instead) and share one
vocabulary: the specialist's, grown by the clinic's words while
it read the notes; the general model gets the same new words as fresh rows
(`pretraining.with_vocabulary`). Both are tuned on questions about the `train`
conditions, with questions about the world's train entities mixed in (the
same for both), learning rate chosen on the `dev` conditions, 3 seeds; the
test asks about the `held_out` conditions, whose facts only the notes state.
"""

from __future__ import annotations

from learnjax.data import clinic
from learnjax.storage.cache import cached_json

SEEDS = (0, 1, 2)
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
WORLD_EXAMPLES = 64  # questions about the world's train entities, in every tuning set
MODELS = ("specialist", "general")
MODEL_NAMES = {"specialist": "specialist (read the notes)", "general": "general (never read them)"}


def tuning_examples(seed: int = 0) -> list:
    """The same tuning set for both assistants: every phrasing of the questions
    about the train conditions, and `WORLD_EXAMPLES` questions about the world."""
    from learnjax.data.questions import training_examples

    return clinic.clinic_questions("train") + training_examples(WORLD_EXAMPLES, seed)


def foundations() -> dict:
    """The specialist foundation (the assistant's foundation, pre-training
    continued on the clinic's notes as `domain_specialization` does) and the
    general one with the same vocabulary, by `MODELS` name; and the seconds
    the continued pre-training took."""
    import time

    from learnjax.experiments.domain_specialization import DomainSettings
    from learnjax.training.foundation import Foundation
    from learnjax.training.instruction_tuning import ASSISTANT_RECIPE
    from learnjax.training.pretraining import foundation_model, pretrain, with_vocabulary

    general = foundation_model(ASSISTANT_RECIPE)
    s = DomainSettings()
    began = time.perf_counter()
    recipe = general.continuing_recipe(steps=s.steps, batch_size=s.batch_size, learning_rate=s.learning_rate, warmup_steps=s.warmup_steps)
    specialist = pretrain(recipe, clinic.clinic_notes(s.n_notes), init=general)
    seconds = time.perf_counter() - began
    same_words = Foundation(with_vocabulary(general.model, len(specialist.tokenizer)), specialist.tokenizer, general.history, general.recipe)
    return {"specialist": specialist, "general": same_words, "seconds": seconds, "new_words": specialist.tokenizer.vocab[len(general.tokenizer) :]}


def ask(assistant, examples: list) -> list[str]:
    """Greedy answers, as long as the longest expected answer allows."""
    longest = max(len(assistant.tokenizer.encode(e.response)) for e in examples) + 1  # and its [END]
    return assistant.answer([e.prompt for e in examples], max_new_tokens=longest)


def _specialist(seeds: tuple[int, ...], learning_rates: tuple[float, ...]) -> dict:
    import dataclasses
    import functools
    import time

    import numpy as np

    from learnjax.data.questions import questions
    from learnjax.experiments.dev_choice import choose_on_dev
    from learnjax.experiments.tuned_runs import tuned_assistant
    from learnjax.training.instruction_tuning import score_answers
    from learnjax.training.sft import SFTSettings

    started = time.perf_counter()
    built = foundations()
    dev, test, trained = (clinic.clinic_questions(split) for split in ("dev", "held_out", "train"))
    world = questions("held_out")  # the world's held-out entities: what any assistant here should answer
    base = SFTSettings()

    def tuned(model: str, seed: int, learning_rate: float):
        return tuned_assistant(built[model], tuning_examples(seed), seed=seed, settings=dataclasses.replace(base, learning_rate=learning_rate))

    def dev_score(assistant) -> tuple[float, float, float]:
        on_dev = score_answers(ask(assistant, dev), dev)
        return on_dev["contains"], score_answers(ask(assistant, trained), trained)["contains"], on_dev["exact"]

    rows, chosen = [], {}
    for model in MODELS:
        began = time.perf_counter()
        # The rate chosen by the dev conditions' questions; on a tie (the general
        # model: none right at any rate) by how well it learned its own tuning
        # questions, then by exact answers on dev.
        best, runs, on_dev = choose_on_dev(functools.partial(tuned, model), learning_rates, seeds, dev_score)
        scores = {
            name: [score_answers(ask(a, examples), examples) for a in runs]
            for name, examples in (("held_out", test), ("trained", trained), ("world", world))
        }
        chosen[model] = runs[0]
        rows.append(
            {
                "model": model,
                "learning_rate": best,
                "dev_contains": {f"{lr:g}": on_dev[lr][0] for lr in learning_rates},
                **{
                    f"{name}_{measure}": float(np.mean([s[measure] for s in runs_scores]))
                    for name, runs_scores in scores.items()
                    for measure in ("contains", "exact")
                },
                "held_out_contains_by_seed": [s["contains"] for s in scores["held_out"]],
                "held_out_by_kind": {k: float(np.mean([s["per_kind"][k]["contains"] for s in scores["held_out"]])) for k in clinic.QUESTIONS},
                "seconds": time.perf_counter() - began,
            }
        )
    shown = test[:: len(clinic.QUESTIONS["treatment"])]  # one phrasing of each held-out fact
    answers = {model: ask(chosen[model], shown) for model in MODELS}
    transcripts = [
        {
            "question": e.prompt,
            "expected": e.response,
            **{
                m: {"answer": answers[m][i], "right": e.fact is not None and e.fact.answer in answers[m][i].replace(".", " ").split()} for m in MODELS
            },
        }
        for i, e in enumerate(shown)
    ]
    return {
        "rows": rows,
        "transcripts": transcripts,
        "seeds": list(seeds),
        "learning_rates": list(learning_rates),
        "conditions": {split: list(c) for split, c in clinic.condition_splits().items()},
        "questions": {"train": len(trained), "dev": len(dev), "held_out": len(test), "world_held_out": len(world)},
        "tuning_examples": len(tuning_examples()),
        "world_examples": WORLD_EXAMPLES,
        "leaked": [prompt for seed in seeds for split in ("dev", "held_out") for prompt in clinic.leaked(tuning_examples(seed), split)],
        "notes_in_which_held_out_facts_appear": [
            clinic.stated_in(clinic.clinic_notes(), f) for f in clinic.clinic_facts(clinic.condition_splits()["held_out"])
        ],
        "new_words": built["new_words"],
        "continued_pretraining_seconds": built["seconds"],
        "settings": dataclasses.asdict(base),
        "runs": len(MODELS) * (len(learning_rates) + len(seeds) - 1),
        "seconds": time.perf_counter() - started,
    }


def specialist(seeds: tuple[int, ...] = SEEDS, learning_rates: tuple[float, ...] = LEARNING_RATES) -> dict:
    """Held-out clinic questions answered by the specialist assistant and the
    general one, tuned alike; the rate chosen per model on dev, `seeds` seeds."""
    return cached_json("specialist", {"seeds": tuple(seeds), "learning_rates": tuple(learning_rates)}, _specialist)


def specialist_table(result: dict) -> str:
    """One row per assistant: its chosen rate and its share right per question set."""
    from learnjax.site.render import table

    return table(
        ["assistant", "learning rate (dev)", "held-out clinic questions", "trained clinic questions", "held-out world questions"],
        [
            (
                MODEL_NAMES[r["model"]],
                f"{r['learning_rate']:g}",
                f"{r['held_out_contains']:.0%} (seeds: {', '.join(f'{x:.0%}' for x in r['held_out_contains_by_seed'])})",
                f"{r['trained_contains']:.0%}",
                f"{r['world_contains']:.0%}",
            )
            for r in result["rows"]
        ],
    )
