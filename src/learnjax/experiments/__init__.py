"""The measured experiments behind the site's claims, cached by recipe and code.

Each function returns plain JSON-ready data, computed once and then read from
the cache by every page, notebook and test that shows or checks it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optax
from flax import nnx

from learnjax.data import corpus, facts, messages, questions
from learnjax.evaluation.language_model import cloze_accuracy, masked_token_scores, perplexity
from learnjax.evaluation.next_word import next_word_accuracy
from learnjax.experiments.dev_choice import choose_on_dev
from learnjax.experiments.spam_filter import label_learning_curve
from learnjax.experiments.tuned_runs import tuned_assistant
from learnjax.models.generation import Sampling
from learnjax.models.lora import merge_lora, save_adapter, trainable_share
from learnjax.models.ngram import KneserNeyTrigram
from learnjax.site.render import table
from learnjax.storage.cache import cached_json, in_threads
from learnjax.text.tokenizer import Tokenizer
from learnjax.training.finetuning import MODES, FinetuneSettings, finetune
from learnjax.training.instruction_tuning import SFTSettings, instruction_tune, knows, score_answers, untuned
from learnjax.training.loops import predict
from learnjax.training.pretraining import foundation_model, pretrain
from learnjax.training.recipe import MIXED_RECIPE, NEXT_WORD_RECIPE, PretrainRecipe
from learnjax.training.scaling_check import run_processes
from learnjax.training.writing import generate_text

LABEL_SIZES = (8, 16, 32, 64, 128, 256, 512)
SEEDS = (0, 1, 2)


def supervised_label_curve(sizes: tuple[int, ...] = LABEL_SIZES, seeds: tuple[int, ...] = SEEDS) -> list[dict]:
    """Held-out accuracy of the from-scratch spam filter against the number of labels."""
    params = {"sizes": tuple(sizes), "seeds": tuple(seeds)}
    return cached_json("supervised-curve", params, label_learning_curve)


SCALING_AMOUNTS = (200, 1_000, 5_000, 40_000)
SCALING_STEPS = 600


def measure_scaling_curve(amounts: tuple[int, ...], steps: int) -> list[dict]:
    # The corpus generator is prefix-stable: the first n texts are the same for
    # every n, so texts outside the largest corpus are held out for every point.
    largest = corpus.build_corpus(max(amounts))
    seen = set(largest)
    held_out = [t for t in corpus.build_corpus(4000, seed=12345) if t not in seen][:1000]
    # One vocabulary for every point, so the amount of text is the only difference.
    tokenizer = Tokenizer.from_texts(largest)

    def point(n: int) -> dict:
        texts = largest[:n]
        foundation = pretrain(PretrainRecipe(n_texts=n, steps=steps), texts, tokenizer=tokenizer, progress=True)  # a bar on a terminal
        scores = masked_token_scores(foundation, held_out, mask_rate=0.15)
        return {
            "n_texts": n,
            "tokens": corpus.corpus_statistics(texts)["tokens"],
            "held_out_accuracy": scores["accuracy"],
            "held_out_loss": scores["loss"],
            "cloze_top1": cloze_accuracy(foundation)["top1"],
            "final_train_loss": sum(foundation.history.loss[-50:]) / 50,
        }

    return in_threads(point, amounts)  # independent runs, two at a time


def scaling_curve(amounts: tuple[int, ...] = SCALING_AMOUNTS, steps: int = SCALING_STEPS) -> list[dict]:
    """Held-out masked-token accuracy and loss against the amount of unlabeled
    text, each point a pre-training run of the same number of steps."""
    return cached_json("scaling-curve", {"amounts": tuple(amounts), "steps": steps}, measure_scaling_curve)


FINETUNE_LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2)


def _spam_scores(foundation, runs: list[tuple], settings) -> list[dict]:
    """Fine-tunes each run (mode, number of labels, seed, learning rate), then scores
    it on the dev and test messages, two runs at a time. Every run of a mode shares one compiled step:
    the learning rate is a value in the optimizer's state (`training.adamw`)."""
    splits = messages.labeled_splits()
    evaluation = {
        split: (
            foundation.tokenizer.encode_batch([m.text for m in splits[split]], messages.MESSAGE_MAX_LEN, truncate=False),
            np.array([m.label for m in splits[split]]),
        )
        for split in ("dev", "test")
    }

    def scored(run: tuple) -> dict:
        mode, n, seed, learning_rate = run
        labeled = messages.balanced_subset(splits["pool"], n, seed)
        classifier = finetune(
            foundation,
            [m.text for m in labeled],
            [m.label for m in labeled],
            mode=mode,
            seed=seed,
            settings=dataclasses.replace(settings, learning_rate=learning_rate),
            label_names=messages.LABEL_NAMES,
            max_len=messages.MESSAGE_MAX_LEN,
        )
        score = {}
        for split, (tokens, labels) in evaluation.items():
            logits = predict(classifier.model, tokens)
            score[split] = float((logits.argmax(-1) == labels).mean())
            score[f"{split}_loss"] = float(optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())
        return score

    return in_threads(scored, runs)  # independent runs, two at a time


def measure_label_efficiency(
    sizes: tuple[int, ...], seeds: tuple[int, ...], learning_rates: tuple[float, ...], modes: tuple[str, ...] = MODES, head_steps: int | None = None
) -> dict:
    foundation = foundation_model()
    base = FinetuneSettings() if head_steps is None else FinetuneSettings(head_steps=head_steps)
    started = time.perf_counter()
    cells = [(mode, n) for mode in modes for n in sizes]
    # The same search for every mode: each learning rate on the first seed,
    # chosen by accuracy on the dev set (never the test set), then the other
    # seeds at the chosen rate. With many labels most rates score 100% on dev,
    # so the dev loss breaks ties: the best-fitting rate, not the first listed.
    keys = [(mode, n, lr) for mode, n in cells for lr in learning_rates]
    search = dict(zip(keys, _spam_scores(foundation, [(mode, n, seeds[0], lr) for mode, n, lr in keys], base)))
    best = {(mode, n): max(learning_rates, key=lambda lr: (search[mode, n, lr]["dev"], -search[mode, n, lr]["dev_loss"])) for mode, n in cells}
    others = iter(_spam_scores(foundation, [(mode, n, seed, best[mode, n]) for mode, n in cells for seed in seeds[1:]], base))
    rows = []
    for mode, n in cells:
        test = [search[mode, n, best[mode, n]]["test"]] + [next(others)["test"] for _ in seeds[1:]]
        rows.append(
            {
                "mode": mode,
                "n_labels": n,
                "learning_rate": best[mode, n],
                "mean": float(np.mean(test)),
                "std": float(np.std(test)),
                "scores": test,
                "dev_by_learning_rate": {str(lr): search[mode, n, lr]["dev"] for lr in learning_rates},
                "dev_loss_by_learning_rate": {str(lr): search[mode, n, lr]["dev_loss"] for lr in learning_rates},
            }
        )
    return {
        "rows": rows,
        "seconds": time.perf_counter() - started,
        "settings": dataclasses.asdict(base),
        "learning_rates": list(learning_rates),
        "seeds": list(seeds),
        "runs": len(cells) * (len(learning_rates) + len(seeds) - 1),
    }


def label_efficiency(
    sizes: tuple[int, ...] = LABEL_SIZES, seeds: tuple[int, ...] = SEEDS, learning_rates: tuple[float, ...] = FINETUNE_LEARNING_RATES
) -> dict:
    """Held-out accuracy of full fine-tuning, a linear probe and training from
    scratch, against the number of labels: the fine-tuning page's experiment."""
    params = {"sizes": tuple(sizes), "seeds": tuple(seeds), "learning_rates": tuple(learning_rates)}
    return cached_json("label-efficiency", params, measure_label_efficiency)


WARM_UP_SIZES, WARM_UP_MODES = (8, 16, 32), ("full", "lora")


def without_head_warm_up() -> dict:
    """The label-efficiency experiment with few labels, for the modes that train
    more than the head, with no head warm-up (`FinetuneSettings.head_steps=0`):
    the same subsets, seeds and learning-rate search."""
    params = {"sizes": WARM_UP_SIZES, "seeds": SEEDS, "learning_rates": FINETUNE_LEARNING_RATES, "modes": WARM_UP_MODES, "head_steps": 0}
    return cached_json("label-efficiency", params, measure_label_efficiency)


MODE_NAMES = {"full": "fine-tuned", "probe": "linear probe (frozen)", "lora": "LoRA (adapters)", "scratch": "from scratch"}


def label_efficiency_table(result: dict) -> str:
    """The experiment as a Markdown table: one row per number of labels, one column per mode."""
    modes = list(dict.fromkeys(r["mode"] for r in result["rows"]))
    sizes = sorted({r["n_labels"] for r in result["rows"]})
    cell = {(r["mode"], r["n_labels"]): r for r in result["rows"]}
    return table(
        ["labels", *(MODE_NAMES[m] for m in modes)], [(n, *(f"{cell[m, n]['mean']:.1%} ± {cell[m, n]['std']:.1%}" for m in modes)) for n in sizes]
    )


GENERATION_TEMPERATURES = (0.0, 0.7, 1.0, 1.5, 2.0)
OPEN_PROMPTS = ("Today my aunt", "Yesterday we", "My friends", "Every morning I", "At the weekend my cousins", "Last night Tom")


def held_out_texts(n: int = 1000, seed: int = 12345) -> list[str]:
    """Texts of the corpus's kind that the default corpus does not contain."""
    seen = set(corpus.build_corpus())
    return [t for t in corpus.build_corpus(4 * n, seed=seed) if t not in seen][:n]


def _generation(temperatures: tuple[float, ...], per_kind: int, samples: int) -> dict:
    started = time.perf_counter()
    foundation = foundation_model(NEXT_WORD_RECIPE)
    probes = corpus.next_word_probes()
    accuracy = next_word_accuracy(foundation, probes)
    by_kind = collections.defaultdict(list)
    for probe, answer in zip(probes, accuracy["answers"]):
        by_kind["place" if probe.probes.startswith("where") else "activity"].append(answer == probe.answer)

    held_out = held_out_texts()
    trigram = KneserNeyTrigram.fit(foundation.tokenizer, corpus.build_corpus(NEXT_WORD_RECIPE.n_texts, NEXT_WORD_RECIPE.corpus_seed))
    prompts = facts.fact_prompts(per_kind)
    shares, examples = {}, {}
    for temperature in temperatures:
        generated = generate_text(foundation, [p.prompt for p in prompts], max_new_tokens=6, sampling=Sampling(temperature), seed=1)
        verdicts = [facts.judge(p.fact, g.tokens) for p, g in zip(prompts, generated)]
        shares[str(temperature)] = {v: verdicts.count(v) / len(verdicts) for v in ("true", "false", "no fact")}
        examples[str(temperature)] = [
            {"prompt": p.prompt, "text": g.text, "verdict": v} for p, g, v in list(zip(prompts, generated, verdicts))[::per_kind][:6]
        ]
    variety = {}
    for temperature in temperatures:
        generated = generate_text(
            foundation, [p for p in OPEN_PROMPTS for _ in range(samples)], max_new_tokens=10, sampling=Sampling(temperature), seed=2
        )
        texts = [g.text for g in generated]
        variety[str(temperature)] = {
            "distinct": sum(len(set(texts[i : i + samples])) for i in range(0, len(texts), samples)) / len(texts),
            "samples": {prompt: texts[i * samples : i * samples + 3] for i, prompt in enumerate(OPEN_PROMPTS)},
        }
    return {
        "next_word": {
            "accuracy": accuracy["accuracy"],
            "n": accuracy["n"],
            "by_kind": {k: {"accuracy": sum(v) / len(v), "n": len(v)} for k, v in by_kind.items()},
            "examples": [{"prompt": p.prompt, "answer": p.answer, "predicted": a} for p, a in zip(probes, accuracy["answers"])],
        },
        "perplexity": {
            "transformer": perplexity(foundation, held_out),
            "trigram": trigram.perplexity(foundation.tokenizer, held_out),
            "held_out_texts": len(held_out),
        },
        "facts": {"shares": shares, "examples": examples, "continuations": len(prompts)},
        "variety": variety,
        "cafe": generate_text(foundation, ["Today I went to the café and drank"])[0].text,
        "seconds": time.perf_counter() - started,
    }


def generation(temperatures: tuple[float, ...] = GENERATION_TEMPERATURES, per_kind: int = 40, samples: int = 16) -> dict:
    """What the generative foundation model learned: held-out next words, perplexity
    against a Kneser-Ney trigram, facts checked against the world by temperature,
    and how varied its continuations are."""
    params = {"temperatures": tuple(temperatures), "per_kind": per_kind, "samples": samples}
    return cached_json("generation", params, _generation)


def generation_summary(result: dict) -> str:
    """The generation experiment in a few lines of plain text."""
    next_word, ppl = result["next_word"], result["perplexity"]
    lines = [
        f"café: Today I went to the café and drank {result['cafe']}",
        f"held-out next words: {next_word['accuracy']:.1%} of {next_word['n']} prompts right (greedy)",
        f"held-out perplexity: Transformer {ppl['transformer']:.2f}, Kneser-Ney trigram {ppl['trigram']:.2f}",
        f"facts in {result['facts']['continuations']} continuations, by temperature (true / false / no fact):",
    ]
    for temperature, shares in result["facts"]["shares"].items():
        lines.append(
            f"  {float(temperature):.1f}: {shares['true']:.0%} / {shares['false']:.0%} / {shares['no fact']:.0%}"
            f"   distinct continuations of one prompt: {result['variety'][temperature]['distinct']:.0%}"
        )
    return "\n".join(lines)


SFT_SIZES = (16, 64, 256)
# The candidate peak learning rates, per mode: adapters train best at higher ones.
SFT_LEARNING_RATES = {"full": (1e-4, 3e-4, 1e-3, 3e-3), "scratch": (1e-4, 3e-4, 1e-3, 3e-3), "lora": (1e-3, 3e-3)}
SFT_CELLS = (("plain", "full"), ("plain", "lora"), ("mixed", "full"), ("mixed", "lora"), ("plain", "scratch"))


def _asked(assistant, asked: list) -> dict:
    """`score_answers` of the assistant's answers to the questions `asked`."""
    return score_answers(assistant.answer([q.prompt for q in asked]), asked)


def sft_search(
    foundations: dict, sizes: tuple[int, ...], seeds: tuple[int, ...], learning_rates: dict[str, tuple[float, ...]], base
) -> tuple[list[dict], dict]:
    """Instruction tuning of each cell (`SFT_CELLS` by size): each learning rate on
    the first seed, chosen on the dev entities' questions (exact match, then
    contains-the-answer to break ties), the other seeds at it, all scored on the
    held-out questions. Rows for the table, and each cell's chosen assistant."""
    held_out, dev = questions.questions("held_out"), questions.questions("dev")

    def tuned(name: str, mode: str, n: int, seed: int, learning_rate: float):
        examples = questions.training_examples(n, seed)
        return tuned_assistant(foundations[name], examples, mode=mode, seed=seed, settings=dataclasses.replace(base, learning_rate=learning_rate))

    def dev_score(assistant) -> tuple[float, float]:
        scores = _asked(assistant, dev)
        return scores["exact"], scores["contains"]

    rows, chosen = [], {}
    for name, mode in SFT_CELLS:
        for n in sizes:
            best, runs, on_dev = choose_on_dev(functools.partial(tuned, name, mode, n), learning_rates[mode], seeds, dev_score)
            scores = in_threads(lambda assistant: _asked(assistant, held_out), runs)
            chosen[name, mode, n] = runs[0]
            rows.append(
                {
                    "foundation": name,
                    "mode": mode,
                    "n_examples": n,
                    "learning_rate": best,
                    "exact": float(np.mean([s["exact"] for s in scores])),
                    "exact_std": float(np.std([s["exact"] for s in scores])),
                    "contains": float(np.mean([s["contains"] for s in scores])),
                    "per_kind": {kind: float(np.mean([s["per_kind"][kind]["exact"] for s in scores])) for kind in scores[0]["per_kind"]},
                    "exact_by_seed": [s["exact"] for s in scores],
                    "dev_exact_by_learning_rate": {str(lr): exact for lr, (exact, _) in on_dev.items()},
                }
            )
    return rows, chosen


def _instruction_tuning(sizes: tuple[int, ...], seeds: tuple[int, ...], learning_rates: dict[str, tuple[float, ...]]) -> dict:
    started = time.perf_counter()
    foundations = {"plain": foundation_model(NEXT_WORD_RECIPE), "mixed": foundation_model(MIXED_RECIPE)}
    held_out, dev = questions.questions("held_out"), questions.questions("dev")
    base = SFTSettings()
    rows, chosen = sft_search(foundations, sizes, seeds, learning_rates, base)
    knowing = {name: knows(f, questions.facts_of("held_out")) for name, f in foundations.items()}
    before = {name: _asked(untuned(f), held_out) for name, f in foundations.items()}

    # The same questions, to each kind of model (256 examples, or the largest size).
    n = 256 if 256 in sizes else sizes[-1]
    shown = held_out[:: max(1, len(held_out) // 8)][:8]
    speakers = {
        "untuned (mixed)": untuned(foundations["mixed"]),
        "scratch": chosen["plain", "scratch", n],
        "plain, full": chosen["plain", "full", n],
        "mixed, full": chosen["mixed", "full", n],
        "mixed, LoRA": chosen["mixed", "lora", n],
    }
    answers = {who: a.answer([q.prompt for q in shown]) for who, a in speakers.items()}
    transcripts = [{"question": q.prompt, "expected": q.response, **{who: answers[who][i] for who in speakers}} for i, q in enumerate(shown)]

    # LoRA against full fine-tuning: what it trains, how fast a step is, what it saves.
    lora_run = chosen["mixed", "lora", n]
    steps = {}
    for mode in ("full", "lora"):
        examples = questions.training_examples(256, 0)
        instruction_tune(foundations["mixed"], examples, mode=mode, settings=dataclasses.replace(base, steps=20))  # compiled
        tick = time.perf_counter()
        instruction_tune(foundations["mixed"], examples, mode=mode, settings=dataclasses.replace(base, steps=200))
        steps[mode] = (time.perf_counter() - tick) / 200
    with tempfile.TemporaryDirectory() as folder:
        adapter = save_adapter(Path(folder) / "adapter", lora_run.model, base.lora_rank, base.lora_alpha)
        full_size = lora_run.save(Path(folder) / "merged")
        adapter_bytes = adapter.stat().st_size
        model_bytes = sum(f.stat().st_size for f in Path(full_size).glob("params-*"))

    merged = merge_lora(nnx.clone(lora_run.model))
    probe = np.asarray(questions.chat_rows(lora_run.tokenizer, held_out[:8], lora_run.model.config.max_len)[0])
    return {
        "rows": rows,
        "knows": knowing,
        "untuned": before,
        "transcripts": transcripts,
        "lora": {
            "share": trainable_share(lora_run.model),
            "seconds_per_step": steps,
            "adapter_bytes": adapter_bytes,
            "model_bytes": model_bytes,
            "merged_max_difference": float(np.abs(np.asarray(merged(probe)) - np.asarray(lora_run.model(probe))).max()),
            "full_exact": next(r["exact"] for r in rows if (r["foundation"], r["mode"], r["n_examples"]) == ("mixed", "full", n)),
            "lora_exact": next(r["exact"] for r in rows if (r["foundation"], r["mode"], r["n_examples"]) == ("mixed", "lora", n)),
        },
        "settings": dataclasses.asdict(base),
        "sizes": list(sizes),
        "seeds": list(seeds),
        "learning_rates": {m: list(r) for m, r in learning_rates.items()},
        "questions": {"held_out": len(held_out), "dev": len(dev), "train_pool": len(questions.questions("train"))},
        "seconds": time.perf_counter() - started,
    }


def instruction_tuning(
    sizes: tuple[int, ...] = SFT_SIZES, seeds: tuple[int, ...] = SEEDS, learning_rates: dict[str, tuple[float, ...]] = SFT_LEARNING_RATES
) -> dict:
    """Knowing versus saying: what each generative foundation knows of the held-out
    facts, and how many of the held-out questions it answers after instruction
    tuning (full, LoRA), against tuning from scratch; LoRA's figures."""
    params = {"sizes": tuple(sizes), "seeds": tuple(seeds), "learning_rates": {m: tuple(r) for m, r in learning_rates.items()}}
    return cached_json("instruction-tuning", params, _instruction_tuning)


def instruction_tuning_summary(result: dict) -> str:
    """The instruction-tuning experiment in plain text."""
    lines = [
        "knows (held-out facts, corpus phrasing): " + ", ".join(f"{n} {k['known']:.0%}" for n, k in result["knows"].items()),
        "says before tuning (chat template): " + ", ".join(f"{n} {u['exact']:.0%}" for n, u in result["untuned"].items()),
        f"says after tuning, exact match on {result['questions']['held_out']} held-out questions (mean ± std over seeds):",
    ]
    for r in result["rows"]:
        lines.append(
            f"  {r['foundation']:>6} {r['mode']:>7} {r['n_examples']:>5} examples: {r['exact']:.0%} ± {r['exact_std']:.0%}"
            f" (contains the answer: {r['contains']:.0%}; learning rate {r['learning_rate']:g})"
        )
    lora = result["lora"]
    lines.append(
        f"LoRA trains {lora['share']['share']:.1%} of the weights; step {lora['seconds_per_step']['lora'] * 1e3:.1f} ms against "
        f"{lora['seconds_per_step']['full'] * 1e3:.1f} ms; adapter {lora['adapter_bytes'] / 1e3:.0f} kB against {lora['model_bytes'] / 1e3:.0f} kB"
    )
    return "\n".join(lines)


def _scaling_out(devices: int, steps: int, processes: int, devices_per_process: int) -> dict:
    started = time.perf_counter()
    # A process of its own: the number of devices is fixed when JAX starts.
    done = subprocess.run(
        [sys.executable, "-m", "learnjax.training.scaling_check", "--devices", str(devices), "--steps", str(steps)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"learnjax.training.scaling_check failed: {done.stderr.strip().splitlines()[-1:]}")
    devices_run = json.loads(done.stdout.strip().splitlines()[-1])
    processes_run = run_processes(processes, devices_per_process, steps // 2)
    return {"mesh": devices_run, "processes": processes_run, "seconds": time.perf_counter() - started}


def scaling_out(devices: int = 8, steps: int = 40, processes: int = 2, devices_per_process: int = 2) -> dict:
    """The training loops on one device against a mesh of `devices` simulated CPU
    devices (data parallel and FSDP), and `processes` processes joined by
    `jax.distributed` against one: the Scaling out page's and the tests' run."""
    params = {"devices": devices, "steps": steps, "processes": processes, "devices_per_process": devices_per_process}
    return cached_json("scaling-out", params, _scaling_out)
