"""Preferences and rewards after fine-tuning, and what they do to hallucination.

The supervised assistant (the instruction-tuning section's recipe: the mixed
foundation, fully fine-tuned on 256 examples) sees a few abstentions about the
train split's unknown entities (`SFT_ABSTENTIONS`): without any, "i don't know."
is an answer it could never give, and nothing after it could pick it. Then DPO
on preferences about the train entities, one run per β, β chosen on dev
(`chosen_on_dev`); everything measured on the held-out entities, known and unknown.
"""

from __future__ import annotations

from learnjax.storage.cache import cached_json, in_threads

# 12 in 256, chosen on dev: with 8 the assistant never abstains greedily, and
# neither DPO nor GRPO taught it to tell unknown things from known ones (every
# colour question got "i don't know."); with 16 it already abstains on most.
SFT_EXAMPLES, SFT_ABSTENTIONS = 256, 12
DPO_BETAS = (1.0, 10.0, 30.0)  # on dev: 0.3 and 1 abstain on most known colours, 30 barely moves
DPO_LEARNING_RATE = 3e-5  # on dev, 1e-4 made every β abstain on most known colours
# GRPO's batches, chosen on dev: 30 of 16 questions left the penalised reward
# at the edge of halving hallucination; 40 of 12 (as many samples) did not.
GRPO_ITERATIONS, GRPO_QUESTIONS_PER_BATCH = 40, 12
KNOWN_LOSS_ALLOWED = 0.05  # how much known accuracy a tuning may cost, in `chosen_on_dev`


def preference_pairs(seed: int = 0) -> list:
    """One preference per train question: about a known entity, the true answer
    over a wrong fact of the same kind; about an unknown one, the abstention
    over a made-up fact."""
    import random

    from learnjax.data import questions, unknowns
    from learnjax.training.preferences import Preference

    rng = random.Random(seed)
    asked = questions.questions("train") + unknowns.unknown_questions("train")
    return [Preference(q.prompt, q.response, unknowns.made_up_answer(q, rng)) for q in asked]


def supervised_assistant():
    """The supervised assistant every later stage starts from, and is compared with."""
    from learnjax.data import questions, unknowns
    from learnjax.experiments.tuned_runs import tuned_assistant
    from learnjax.training.pretraining import foundation_model
    from learnjax.training.sft import ASSISTANT_RECIPE

    examples = unknowns.with_abstentions(questions.training_examples(SFT_EXAMPLES, 0), SFT_ABSTENTIONS, 0)
    return tuned_assistant(foundation_model(ASSISTANT_RECIPE), examples, mode="full")


def measured(assistant, split: str) -> dict:
    """Shares of right, abstaining and wrong greedy answers to the questions about
    the split's known entities and about its unknown ones: accuracy, false
    abstention; abstention, hallucination."""
    from learnjax.data import questions, unknowns

    result = {}
    for name, asked in (("known", questions.questions(split)), ("unknown", unknowns.unknown_questions(split))):
        verdicts = [unknowns.verdict(a, q) for a, q in zip(assistant.answer([q.prompt for q in asked]), asked)]
        result[name] = {v: verdicts.count(v) / len(verdicts) for v in ("right", "abstain", "wrong")} | {"n": len(verdicts)}
    return result


def chosen_on_dev(dev: dict[float, dict], sft_dev: dict) -> float:
    """The β whose run abstains most about dev's unknown entities while losing at
    most `KNOWN_LOSS_ALLOWED` of the supervised assistant's accuracy on dev's
    known ones (the closer to it, on a tie); with none that close, the β that
    loses least. Dev only: the held-out entities never choose."""
    floor = sft_dev["known"]["right"] - KNOWN_LOSS_ALLOWED - 1e-9
    keeping = [beta for beta, scores in dev.items() if scores["known"]["right"] >= floor]
    if not keeping:
        return max(dev, key=lambda beta: dev[beta]["known"]["right"])
    return max(keeping, key=lambda beta: (dev[beta]["unknown"]["abstain"], dev[beta]["known"]["right"]))


def transcript(sft, tuned, name: str) -> list[dict]:
    """The greedy answers of `sft` and of `tuned` (under `name`) to a few held-out
    questions: four about known entities, four about unknown ones."""
    from learnjax.data import questions, unknowns

    shown = questions.questions("held_out")[::33][:4] + unknowns.unknown_questions("held_out")[::7][:4]
    prompts = [q.prompt for q in shown]
    return [{"question": q.prompt, "expected": q.response, "sft": s, name: t} for q, s, t in zip(shown, sft.answer(prompts), tuned.answer(prompts))]


def tuned_on_dev(sft, pairs: list, betas: tuple[float, ...], settings) -> tuple[dict, dict, dict, float]:
    """One DPO run from `sft` per β (the other `settings` the same), the dev
    figures of each and of `sft`, and the β `chosen_on_dev` keeps."""
    import dataclasses

    from learnjax.training.preferences import preference_tune

    def tuned(beta: float):  # one run and its dev figures: the runs are independent, two at a time
        run = preference_tune(sft, pairs, dataclasses.replace(settings, beta=beta))
        return run, measured(run, "dev")

    tuned_runs = in_threads(tuned, betas)
    runs = {beta: run for beta, (run, _) in zip(betas, tuned_runs)}
    dev = {beta: figures for beta, (_, figures) in zip(betas, tuned_runs)}
    sft_dev = measured(sft, "dev")
    return runs, dev, sft_dev, chosen_on_dev(dev, sft_dev)


def _preferences(betas: tuple[float, ...]) -> dict:
    import time

    from learnjax.training.preferences import DPOSettings

    started = time.perf_counter()
    sft = supervised_assistant()
    pairs = preference_pairs()
    settings = DPOSettings(learning_rate=DPO_LEARNING_RATE)
    runs, dev, sft_dev, best = tuned_on_dev(sft, pairs, betas, settings)
    transcripts = transcript(sft, runs[best], "dpo")
    return {
        "sft": {"dev": sft_dev, "held_out": measured(sft, "held_out")},
        "dpo": {
            str(beta): {"dev": dev[beta], "held_out": measured(run, "held_out"), "final_loss": run.history.loss[-1]} for beta, run in runs.items()
        },
        "beta": best,
        "pairs": len(pairs),
        "settings": {"sft_examples": SFT_EXAMPLES, "sft_abstentions": SFT_ABSTENTIONS, "known_loss_allowed": KNOWN_LOSS_ALLOWED, **settings.__dict__},
        "transcripts": transcripts,
        "seconds": time.perf_counter() - started,
    }


def preferences(betas: tuple[float, ...] = DPO_BETAS) -> dict:
    """The supervised assistant's hallucination rate on held-out unknown entities
    and its accuracy on held-out known ones, before and after DPO at each β."""
    return cached_json("preferences", {"betas": tuple(betas)}, _preferences)


def preferences_summary(result: dict) -> str:
    """The preference experiment in plain text."""

    def line(name, scores):
        k, u = scores["known"], scores["unknown"]
        return (
            f"{name:>14}: known right {k['right']:.0%}, abstains {k['abstain']:.0%}; "
            f"unknown abstains {u['abstain']:.0%}, hallucinates {u['wrong']:.0%}"
        )

    lines = [line("SFT", result["sft"]["held_out"])]
    lines += [line(f"DPO β={beta}", run["held_out"]) for beta, run in result["dpo"].items()]
    lines.append(f"β chosen on dev: {result['beta']}")
    return "\n".join(lines)


PASS_AT = (1, 2, 4, 8, 16)


def pass_at_k(assistant, asked: list, samples: int = 16, seed: int = 0) -> dict[str, float]:
    """The chance that at least one of k answers sampled at temperature 1 is
    right, for each k of `PASS_AT`, from `samples` answers per question (the
    unbiased estimate of Chen et al. 2021), averaged over the questions."""
    from math import comb

    from learnjax.data.unknowns import verdict
    from learnjax.training.rewards import GRPOSettings, sampled_groups

    groups = sampled_groups(
        assistant.model, assistant.tokenizer, asked, lambda a, q: float(verdict(a, q) == "right"), GRPOSettings(group=samples), seed
    )
    right = groups["rewards"].sum(axis=1).astype(int)
    return {str(k): float(sum(1 - comb(samples - c, k) / comb(samples, k) for c in right) / len(asked)) for k in PASS_AT}


def _rewards(schemes: tuple[str, ...]) -> dict:
    import time

    from learnjax.data import questions, unknowns
    from learnjax.training.rewards import REWARDS, GRPOSettings, reinforce, world_reward

    started = time.perf_counter()
    sft = supervised_assistant()
    train = questions.questions("train") + unknowns.unknown_questions("train")
    settings = GRPOSettings(iterations=GRPO_ITERATIONS, questions_per_batch=GRPO_QUESTIONS_PER_BATCH)
    runs = dict(zip(schemes, in_threads(lambda scheme: reinforce(sft, train, world_reward(scheme), settings), schemes)))  # two at a time
    known = questions.questions("held_out")
    return {
        "sft": {"held_out": measured(sft, "held_out"), "pass_at": pass_at_k(sft, known)},
        "rl": {
            scheme: {"held_out": measured(run, "held_out"), "pass_at": pass_at_k(run, known), "mean_reward": run.history.accuracy}
            for scheme, run in runs.items()
        },
        "rewards": {scheme: REWARDS[scheme] for scheme in schemes},
        "settings": settings.__dict__,
        "questions": len(train),
        "transcripts": transcript(sft, runs["penalised"], "penalised") if "penalised" in runs else [],
        "seconds": time.perf_counter() - started,
    }


def rewards(schemes: tuple[str, ...] = ("unpenalised", "penalised")) -> dict:
    """GRPO from the supervised assistant with each reward of `rewards.REWARDS`,
    the same runs otherwise: held-out known and unknown entities, and pass@k on
    the known ones before and after."""
    return cached_json("rewards", {"schemes": tuple(schemes)}, _rewards)


def rewards_summary(result: dict) -> str:
    """The reward experiment in plain text."""

    def line(name, run):
        k, u = run["held_out"]["known"], run["held_out"]["unknown"]
        passes = " ".join(f"@{n}={p:.0%}" for n, p in run["pass_at"].items())
        return f"{name:>12}: known right {k['right']:.0%}; unknown hallucinates {u['wrong']:.0%}; pass{passes}"

    return "\n".join([line("SFT", result["sft"])] + [line(s, run) for s, run in result["rl"].items()])
