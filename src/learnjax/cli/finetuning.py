"""`learnjax finetune`, `prefer`, `reinforce`, `ask` and `chat`: classifiers and
assistants made from a foundation, assistants tuned further from preferences and
rewards, and talking to an assistant."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from learnjax.cli.common import (
    UsageError,
    add_checkpoint_options,
    add_command,
    add_device_options,
    dataclass_defaults,
    device_mesh,
    finite_number,
    given_settings,
    integer_at_least,
    load_foundation,
    options_named,
    positive,
    positive_number,
    print_json,
    report_skipped,
    seed_number,
    training_checkpoints,
)

# The training settings' defaults, for the help, read from their dataclasses'
# source: importing those modules imports JAX, which `--help` must not wait for.
CLASSIFIER = dataclass_defaults("learnjax.training.finetuning", "FinetuneSettings")
ASSISTANT = dataclass_defaults("learnjax.training.sft", "SFTSettings")
DPO = dataclass_defaults("learnjax.training.preferences", "DPOSettings")
GRPO = dataclass_defaults("learnjax.training.rewards", "GRPOSettings")

EXAMPLES = {
    "finetune": """examples:
  learnjax finetune --model foundation/ --train labeled.csv --out spam-filter/
  learnjax finetune --model foundation/ --train labeled.jsonl --mode probe --steps 200 --out probe/
  learnjax finetune --model writer/ --train questions.jsonl --mode lora --out assistant/
  learnjax finetune --model foundation/ --train labeled.csv --checkpoint-every 50 --out spam-filter/   # then --resume

The file needs a header (CSV/TSV) or keys (JSON Lines) named text and label
(a classifier, from a masked model) or prompt and response (an assistant, from
a next-word model; without --model, the built-in one).""",
    "prefer": """examples:
  learnjax prefer --model assistant/ --pairs preferences.jsonl --out tuned/
  learnjax prefer --model assistant/ --pairs preferences.csv --beta 1 --steps 60 --out tuned/

The file needs a header (CSV/TSV) or keys (JSON Lines) named prompt, chosen and
rejected: of the two answers to each prompt, chosen is preferred. The assistant
in --model is the reference the tuned copy is measured against; it is not changed.""",
    "reinforce": """examples:
  learnjax reinforce --model assistant/ --questions questions.csv --out tuned/
  learnjax reinforce --model assistant/ --questions questions.jsonl --wrong-reward -1 --out tuned/

The file needs a header (CSV/TSV) or keys (JSON Lines) named prompt and answer,
the one answer accepted. Each sampled answer scores 1 if it is that answer, word
for word (case aside), --abstain-reward if it is "i don't know." and
--wrong-reward otherwise. The assistant in --model is not changed.""",
    "ask": """examples:
  learnjax ask --model assistant/ "where does a nurse work?" "which day comes after friday?"
  learnjax ask --model assistant/ --json "what colour is the banana?" """,
    "chat": """examples:
  learnjax chat --model assistant/
  printf 'what do people do at the pub?\\nwhat colour is the sky?\\n' | learnjax chat --model assistant/""",
}


def cmd_finetune(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import example_kind
    from learnjax.storage.checkpoints import check_writable_model_dir

    kind = example_kind(args.train)  # text/label: a classifier; prompt/response: an assistant
    check_writable_model_dir(args.out, overwrite=args.overwrite, reading_from=args.model)  # before any training
    (_finetune_assistant if kind == "assistant" else _finetune_classifier)(args)


def _finetune_classifier(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import read_labeled
    from learnjax.training.finetuning import FinetuneSettings, check_mode, finetune

    check_mode(args.mode)
    skipped: list[int] | None = [] if args.skip_bad_rows else None
    texts, labels = read_labeled(args.train, skipped=skipped)  # checked before any model is loaded
    report_skipped(args, skipped)
    foundation = load_foundation(args.model, args.json)
    if foundation.objective != "masked":
        raise ValueError(
            f"{args.model} is a {foundation.objective} model, which writes text; a classifier is fine-tuned from a masked "
            "model (or give prompt and response columns to make an assistant)"
        )
    settings = given_settings(FinetuneSettings(), args, "steps", "learning_rate", "head_steps")
    started = time.perf_counter()
    checkpoints = training_checkpoints(args, "classifier")
    keep = args.checkpoint_every is not None or args.resume
    with options_named():
        classifier = finetune(
            foundation,
            texts,
            labels,
            mode=args.mode,
            settings=settings,
            seed=args.seed,
            progress=not args.json,
            mesh=device_mesh(args),
            fsdp=args.fsdp,
            checkpoint_dir=checkpoints.directory if keep else None,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
        )
    out = classifier.save(args.out)
    checkpoints.remove()  # the finished model is saved
    result = {
        "out": str(out),
        "built": "classifier",
        "mode": args.mode,
        "examples": len(texts),
        "head_steps": settings.head_steps,
        "steps": settings.steps,
        "labels": list(classifier.labels),
        **({"skipped_lines": skipped} if skipped is not None else {}),
        "final_loss": classifier.history.loss[-1],
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print_json(result)
    else:
        print(
            f"saved a classifier to {out}: {args.mode} fine-tuning on {len(texts)} examples "
            f"({settings.head_steps} steps of the head alone, then {settings.steps}), labels {', '.join(classifier.labels)}, "
            f"final loss {result['final_loss']:.3f}"
        )


def _finetune_assistant(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import read_instructions
    from learnjax.data.questions import Example
    from learnjax.training.instruction_tuning import ASSISTANT_RECIPE, MODES, SFTSettings, instruction_tune

    if args.mode not in MODES:
        why = " (a probe trains a classification head; an assistant has none)" if args.mode == "probe" else ""
        raise ValueError(f"an assistant is fine-tuned with --mode {', '.join(MODES)}; got {args.mode!r}{why}")
    if args.head_steps is not None:
        raise UsageError("--head-steps warms up a classifier's new head; an assistant (prompt and response columns) has none", args.command)
    if args.checkpoint_every is not None or args.resume:
        raise UsageError(
            "--checkpoint-every and --resume checkpoint a classifier's training; instruction tuning (prompt and response columns) runs in one go",
            args.command,
        )
    skipped: list[int] | None = [] if args.skip_bad_rows else None
    prompts, responses, lines = read_instructions(args.train, skipped=skipped)  # checked before any model is loaded
    report_skipped(args, skipped)
    foundation = load_foundation(args.model, args.json, ASSISTANT_RECIPE)
    if foundation.objective != "next-word":
        raise ValueError(
            f"{args.model} is a {foundation.objective} model, which does not write; an assistant is fine-tuned from a "
            "next-word model (learnjax pretrain --objective next-word)"
        )
    check_fits(foundation.tokenizer, foundation.model.config.max_len, args.train, zip(prompts, responses), lines)
    settings = given_settings(SFTSettings(), args, "steps", "learning_rate")
    started = time.perf_counter()
    assistant = instruction_tune(
        foundation,
        [Example(p, r) for p, r in zip(prompts, responses)],
        mode=args.mode,
        settings=settings,
        seed=args.seed,
        progress=not args.json,
        mesh=device_mesh(args),
        fsdp=args.fsdp,
    )
    details = {"mode": args.mode, "examples": len(prompts), **({"skipped_lines": skipped} if skipped is not None else {})}
    _save_assistant(args, assistant, started, details, f"{args.mode} instruction tuning on {len(prompts)} examples")


def _save_assistant(args: argparse.Namespace, assistant, started: float, details: dict, said: str) -> None:
    """Saves to --out and reports it: `details` in the JSON, `said` in the sentence."""
    out = assistant.save(args.out)
    result = {
        "out": str(out),
        "built": "assistant",
        **details,
        "final_loss": assistant.history.loss[-1],
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print_json(result)
    else:
        print(f"saved an assistant to {out}: {said}, final loss {result['final_loss']:.3f}")


def check_fits(tokenizer, max_len: int, path: Path, pairs, lines: list[int]) -> None:
    """Refuses, naming its line, a (prompt, answer) of the file `path` longer in the
    chat template than the model reads: cut short, its answer would be lost."""
    from learnjax.data.questions import chat_ids

    for (prompt, answer), line in zip(pairs, lines):
        n = len(chat_ids(tokenizer, prompt, answer))
        if n > max_len:
            raise ValueError(f"{path} line {line}: the example has {n} tokens in the chat template; the model reads at most {max_len}")


def _tuned_assistant(args: argparse.Namespace, file: Path, columns: tuple[str, ...], answers: tuple[str, ...]):
    """The assistant of --model and the rows of `file` (its `columns`, each answer
    of `answers` checked to fit), both read before any training; --out checked first."""
    from learnjax.data.labeled_files import read_text_columns
    from learnjax.storage.checkpoints import check_writable_model_dir
    from learnjax.training.instruction_tuning import Assistant

    check_writable_model_dir(args.out, overwrite=args.overwrite, reading_from=args.model)
    rows, lines = read_text_columns(file, columns)  # a bad file is refused before any model is loaded
    assistant = Assistant.load(args.model)
    for answer in answers:
        check_fits(assistant.tokenizer, assistant.model.config.max_len, file, ((r["prompt"], r[answer]) for r in rows), lines)
    return assistant, rows


def _save_tuned(args: argparse.Namespace, tuned, what: str, n: int, started: float) -> None:
    _save_assistant(args, tuned, started, {"mode": tuned.mode, what: n}, f"{tuned.mode.upper()} on {n} {what}")


def cmd_prefer(args: argparse.Namespace) -> None:
    from learnjax.training.preferences import DPOSettings, Preference, preference_tune

    assistant, rows = _tuned_assistant(args, args.pairs, ("prompt", "chosen", "rejected"), ("chosen", "rejected"))
    settings = given_settings(DPOSettings(), args, "beta", "steps", "learning_rate")
    started = time.perf_counter()
    preferences = [Preference(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
    _save_tuned(
        args,
        preference_tune(assistant, preferences, settings, args.seed),
        "preferences",
        len(preferences),
        started,
    )


def cmd_reinforce(args: argparse.Namespace) -> None:
    from learnjax.data.questions import Example
    from learnjax.training.rewards import GRPOSettings, exact_reward, reinforce

    assistant, rows = _tuned_assistant(args, args.questions, ("prompt", "answer"), ("answer",))
    settings = given_settings(GRPOSettings(), args, "iterations", "group", "temperature", "learning_rate")
    started = time.perf_counter()
    examples = [Example(r["prompt"], r["answer"]) for r in rows]
    reward = exact_reward(1.0, args.abstain_reward, args.wrong_reward)
    _save_tuned(args, reinforce(assistant, examples, reward, settings, args.seed), "questions", len(examples), started)


def cmd_ask(args: argparse.Namespace) -> None:
    from learnjax.training.instruction_tuning import Assistant

    assistant = Assistant.load(args.model)
    answers = assistant.answer(args.questions)
    if args.json:
        print_json({"model": str(args.model), "results": [{"question": q, "answer": a} for q, a in zip(args.questions, answers)]})
    else:
        for answer in answers:
            print(answer)


def cmd_chat(args: argparse.Namespace) -> None:
    """A question per line: typed at a terminal (an empty line or end of input stops),
    or read from stdin when it is not one, an answer per question."""
    from learnjax.training.instruction_tuning import Assistant

    assistant = Assistant.load(args.model)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"learnjax chat with {args.model}: ask a question; an empty line or Ctrl-D ends.", file=sys.stderr)
    while True:
        try:
            question = input("you: " if interactive else "")
        except EOFError:
            break
        if not question.strip():
            if interactive:
                break
            continue
        answer = assistant.answer([question])[0]
        if args.json:
            print(json.dumps({"question": question, "answer": answer}, ensure_ascii=False))
        else:
            print(f"assistant: {answer}" if interactive else answer, flush=True)


def add_commands(commands) -> None:
    """`finetune`, `ask` and `chat`."""
    p = add_command(
        commands, EXAMPLES, "finetune", "Fine-tune a classifier (text and label columns) or an assistant (prompt and response columns).", cmd_finetune
    )
    p.add_argument("--model", type=Path, help="a pre-trained model directory (default: the built-in foundation model)")
    p.add_argument(
        "--train",
        required=True,
        type=Path,
        help="CSV, TSV or JSON Lines: 'text' and 'label' columns for a classifier, 'prompt' and 'response' for an assistant",
    )
    p.add_argument(
        "--out", required=True, type=Path, help="directory to save the model to: new, empty, or holding a model (not the --model directory)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="leave out rows of --train holding what cannot be text (bytes that are not UTF-8, NUL), and say which, instead of refusing the file",
    )
    add_device_options(p)
    p.add_argument(
        "--mode",
        default="full",
        help="full (update everything), probe (frozen encoder; classifiers), lora (low-rank adapters) or scratch (no pre-training)",
    )
    p.add_argument(
        "--steps", type=positive, help=f"training steps (default: {CLASSIFIER['steps']} for a classifier, {ASSISTANT['steps']} for an assistant)"
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        help=f"peak learning rate (default: {CLASSIFIER['learning_rate']:g} for a classifier, {ASSISTANT['learning_rate']:g} for an assistant)",
    )
    p.add_argument(
        "--head-steps",
        type=integer_at_least(0),
        help=f"a classifier's first steps, training its new head alone on the frozen encoder (default: {CLASSIFIER['head_steps']}; 0: none)",
    )
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    add_checkpoint_options(p)

    p = add_command(commands, EXAMPLES, "prefer", "Tune an assistant on preferences (prompt, chosen and rejected columns) by DPO.", cmd_prefer)
    _add_tuning_options(p)
    p.add_argument("--pairs", required=True, type=Path, help="CSV, TSV or JSON Lines with 'prompt', 'chosen' and 'rejected' columns")
    p.add_argument(
        "--beta", type=positive_number, help=f"how far the tuned assistant may move from --model: smaller moves further (default: {DPO['beta']:g})"
    )
    p.add_argument("--steps", type=positive, help=f"training steps (default: {DPO['steps']})")
    p.add_argument("--learning-rate", type=positive_number, help=f"peak learning rate (default: {DPO['learning_rate']:g})")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")

    p = add_command(
        commands,
        EXAMPLES,
        "reinforce",
        "Tune an assistant by GRPO on questions (prompt and answer columns), each sampled answer scored exactly.",
        cmd_reinforce,
    )
    _add_tuning_options(p)
    p.add_argument("--questions", required=True, type=Path, help="CSV, TSV or JSON Lines with 'prompt' and 'answer' columns")
    p.add_argument("--abstain-reward", type=finite_number, default=0.0, help='the score of "i don\'t know." (default: 0)')
    p.add_argument(
        "--wrong-reward",
        type=finite_number,
        default=0.0,
        help='the score of an answer that is neither the accepted one nor "i don\'t know." (default: 0; below '
        "--abstain-reward, guessing costs more than abstaining)",
    )
    p.add_argument(
        "--iterations",
        type=positive,
        help=f"batches of {GRPO['questions_per_batch']} questions to sample and learn from (default: {GRPO['iterations']})",
    )
    p.add_argument("--group", type=integer_at_least(2), help=f"answers sampled per question, compared with each other (default: {GRPO['group']})")
    p.add_argument("--temperature", type=positive_number, help=f"sampling temperature (default: {GRPO['temperature']:g})")
    p.add_argument("--learning-rate", type=positive_number, help=f"peak learning rate (default: {GRPO['learning_rate']:g})")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")

    p = add_command(commands, EXAMPLES, "ask", "Ask an instruction-tuned assistant questions.", cmd_ask)
    p.add_argument("questions", nargs="+", metavar="QUESTION", help="one or more questions")
    p.add_argument("--model", required=True, type=Path, help="an assistant directory (learnjax finetune with prompt and response columns)")

    p = add_command(commands, EXAMPLES, "chat", "Talk to an assistant: one question per line, typed or piped in.", cmd_chat)
    p.add_argument("--model", required=True, type=Path, help="an assistant directory")


def _add_tuning_options(p: argparse.ArgumentParser) -> None:
    """--model and --out of the commands that tune an assistant into a new one."""
    p.add_argument("--model", required=True, type=Path, help="an assistant directory (learnjax finetune with prompt and response columns)")
    p.add_argument("--out", required=True, type=Path, help="directory to save the tuned assistant to: new, empty, or holding a model (not --model)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
