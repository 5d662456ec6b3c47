"""The `learnjax` command: pre-train, fill in masks, generate, fine-tune, classify, evaluate, experiment.

Errors print one line on stderr (with `--json`, a JSON object) and exit with
status 1 (2 for bad usage, 130 when interrupted); `--debug` shows the full
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path

EXAMPLES = {
    "pretrain": """examples:
  learnjax pretrain --out foundation/
  learnjax pretrain --corpus notes.txt books/ --steps 3000 --seed 1 --out mine/
  learnjax pretrain --corpus mails/ --vocab-size 8000 --max-len 64 --d-model 128 --heads 4 --out mine/
  learnjax pretrain --corpus mails/ --checkpoint-every 200 --out mine/      # interrupted? add --resume
  learnjax pretrain --init mine/ --corpus clinic-notes/ --steps 300 --out clinic/
  learnjax pretrain --objective next-word --out writer/

With --corpus the text is read with a subword tokenizer (WordPiece, --vocab-size
tokens) unless --tokenizer word; the built-in corpus keeps whole words.""",
    "fill-mask": """examples:
  learnjax fill-mask "Today I went to the café and drank [MASK]."
  learnjax fill-mask --model mine/ --top-k 3 --json "The [MASK] is blue." """,
    "generate": """examples:
  learnjax generate "Today I went to the café and drank"
  learnjax generate --temperature 1.0 --seed 3 --max-new-tokens 12 "My friends" "Last night Tom"
  learnjax generate --model writer/ --json "Every day the pilot drives to the" """,
    "finetune": """examples:
  learnjax finetune --model foundation/ --train labeled.csv --out spam-filter/
  learnjax finetune --model foundation/ --train labeled.jsonl --mode probe --steps 200 --out probe/
  learnjax finetune --model writer/ --train questions.jsonl --mode lora --out assistant/
  learnjax finetune --model foundation/ --train labeled.csv --checkpoint-every 50 --out spam-filter/   # then --resume

The file needs a header (CSV/TSV) or keys (JSON Lines) named text and label
(a classifier, from a masked model) or prompt and response (an assistant, from
a next-word model; without --model, the built-in one).""",
    "classify": """examples:
  learnjax classify --model spam-filter/ "Claim your jackpot now!"
  learnjax classify --model spam-filter/ --json "See you at dinner" "Free voucher inside"
  learnjax classify --model spam-filter/ --input inbox.txt --output labels.csv
  learnjax classify --model spam-filter/ --input inbox.jsonl --format jsonl --windows average
  cat inbox.txt | learnjax classify --model spam-filter/ --input -

--input reads plain text (one text per line), or CSV, TSV or JSON Lines with a
text field; the results (text, label, probability of each label) go to --output
or to standard output, as CSV (default), TSV or JSON Lines.""",
    "evaluate": """examples:
  learnjax evaluate --model spam-filter/ --test test.csv
  learnjax evaluate --model spam-filter/ --test test.jsonl --json

The file needs a header (CSV/TSV) or keys (JSON Lines) named text and label.""",
    "ask": """examples:
  learnjax ask --model assistant/ "where does a nurse work?" "which day comes after friday?"
  learnjax ask --model assistant/ --json "what colour is the banana?" """,
    "chat": """examples:
  learnjax chat --model assistant/
  printf 'what do people do at the pub?\\nwhat colour is the sky?\\n' | learnjax chat --model assistant/""",
    "experiment": """examples:
  learnjax experiment label-efficiency
  learnjax experiment label-efficiency --json
  learnjax experiment generation""",
    "cache": """examples:
  learnjax cache list
  learnjax cache graph          # what each entry read, and the seconds it took
  learnjax cache prune          # entries of older versions of the code
  learnjax cache prune --all    # everything""",
}


class UsageError(ValueError):
    """Bad command-line input (exit status 2). `command` is the command it was
    given to, where known."""

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.command = command


class _Parser(argparse.ArgumentParser):
    """Raises bad usage instead of printing it, so that `main` reports it in one
    line, as text or as JSON."""

    def error(self, message: str):
        raise UsageError(message, self.prog.partition(" ")[2] or None)


def _integer_at_least(minimum: int):
    """An argparse type: an integer no smaller than `minimum` (argparse names the option)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


_positive = _integer_at_least(1)
_seed = _integer_at_least(0)  # numpy's generators take no negative seed
_top_k = _integer_at_least(0)  # 0: no limit


def _number_in(low: float, high: float, *, low_open: bool = False, what: str):
    """An argparse type: a finite number in [low, high] ((low, high] with `low_open`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (low < value if low_open else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


_temperature = _number_in(0.0, 1e6, what="0 (greedy) or positive")
_top_p = _number_in(0.0, 1.0, low_open=True, what="in (0, 1]")


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _load_foundation(path: Path | None, json_output: bool, recipe=None):
    """The model in `path`, else the cached foundation model of `recipe` (default: the masked one)."""
    from learnjax.training.pretraining import Foundation

    if path is not None:
        return Foundation.load(path)
    from learnjax.storage.cache import foundation_model

    return foundation_model(recipe, progress=not json_output)


def _mesh(args: argparse.Namespace):
    """The device mesh `--devices` asks for (default: every visible device), or
    None for one device, which trains exactly as without a mesh."""
    import jax

    from learnjax.training.sharding import data_mesh

    n = args.devices if args.devices is not None else jax.device_count()
    if n > jax.device_count():
        raise UsageError(f"--devices {n}: only {jax.device_count()} visible ({jax.devices()[0].platform})", args.command)
    if n == 1 and args.fsdp:
        raise UsageError("--fsdp shards the state over several devices; with one device there is nothing to shard", args.command)
    return data_mesh(n) if n > 1 else None


# The recipe's fields and the `pretrain` options that set them.
RECIPE_OPTIONS = {
    "objective": "--objective", "tokenizer": "--tokenizer", "vocab_size": "--vocab-size", "max_len": "--max-len", "d_model": "--d-model",
    "n_layers": "--layers", "n_heads": "--heads", "d_ff": "--d-ff", "steps": "--steps", "batch_size": "--batch-size",
    "learning_rate": "--learning-rate", "seed": "--seed", "lora_rank": "--lora", "corpus": "--corpus", "init": "--init",
}
_SETTING = re.compile(r"\b(" + "|".join(RECIPE_OPTIONS) + r")=")


@contextlib.contextmanager
def _options_named():
    """The library names its parameters in errors (`d_model=100 must be ...`):
    name the options that set them instead (`--d-model 100 must be ...`)."""
    try:
        yield
    except ValueError as e:
        raise ValueError(_SETTING.sub(lambda m: RECIPE_OPTIONS[m[1]] + " ", str(e))) from None


def _training_checkpoints(args: argparse.Namespace, kind: str):
    """Where a command keeps its run's checkpoints (`--checkpoint-every`, `--resume`)."""
    from learnjax.storage.checkpoints import CHECKPOINT_FOLDER, TrainingCheckpoints

    return TrainingCheckpoints(args.out / CHECKPOINT_FOLDER, kind)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from learnjax.data.textfiles import TextLines
    from learnjax.storage.checkpoints import check_writable_model_dir
    from learnjax.training.pretraining import OBJECTIVES, CorpusShape, Foundation, PretrainRecipe, corpus_recipe, pretrain

    if args.lora is not None and args.init is None:
        raise UsageError("--lora adapts the model of --init (continued pre-training)", args.command)
    if args.init is not None and not args.corpus:
        raise UsageError("--init continues pre-training on new text: give it with --corpus", args.command)
    check_writable_model_dir(args.out, overwrite=args.overwrite, reading_from=args.init)  # before any training
    if args.strict and not args.corpus:
        raise UsageError("--strict checks the text of --corpus: give it with --corpus", args.command)
    texts = TextLines(args.corpus, strict=args.strict) if args.corpus else None  # checks every path before any training starts
    init = Foundation.load(args.init) if args.init is not None else None
    fields = {field.name for field in dataclasses.fields(PretrainRecipe)}
    changes = {field: value for field, option in RECIPE_OPTIONS.items()
               if field in fields and (value := getattr(args, option[2:].replace("-", "_"))) is not None}
    mesh = _mesh(args)
    started = time.perf_counter()
    chosen = {}
    with _options_named():
        if init is not None:
            recipe = PretrainRecipe.continuing(init, **changes)
        else:
            if "d_model" in changes and "d_ff" not in changes:
                changes["d_ff"] = 2 * changes["d_model"]  # the recipe's proportion
            recipe = PretrainRecipe(**changes)  # what is given, checked before the corpus is read
            if texts is not None:  # real text: a subword vocabulary, rows and steps chosen from the corpus
                recipe, chosen = corpus_recipe(CorpusShape.measure(texts), **changes)
                if chosen and not args.json:
                    print("chosen from the corpus (set any of them to choose yourself):\n" + "".join(f"  {line}\n" for line in chosen.values()),
                          end="", flush=True)
        checkpoints = _training_checkpoints(args, OBJECTIVES[recipe.objective][1])
        resumed_at = checkpoints.step() if args.resume else None
        keep = args.checkpoint_every is not None or args.resume
        foundation = pretrain(recipe, texts, init=init, lora_rank=args.lora, progress=not args.json, mesh=mesh, fsdp=args.fsdp,
                              checkpoint_dir=checkpoints.directory if keep else None, checkpoint_every=args.checkpoint_every,
                              resume=args.resume)
    out = foundation.save(args.out)
    checkpoints.remove()  # the finished model is saved
    tokenizer = foundation.tokenizer
    result = {
        "out": str(out), "objective": recipe.objective, "tokenizer": tokenizer.kind, "vocabulary": len(tokenizer),
        "max_len": recipe.max_len, "d_model": recipe.d_model, "layers": recipe.n_layers, "heads": recipe.n_heads, "d_ff": recipe.d_ff,
        "steps": recipe.steps, "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
        "devices": mesh.size if mesh is not None else 1, "fsdp": args.fsdp,
        "final_loss": foundation.history.loss[-1], "seconds": round(time.perf_counter() - started, 2),
    }
    if chosen:
        result["chosen_from_corpus"] = chosen
    if resumed_at is not None:
        result["resumed_at_step"] = resumed_at
    if init is not None:
        new_words = tokenizer.vocab[len(init.tokenizer):]
        result.update(init=str(args.init), lora_rank=args.lora, new_words=len(new_words), new_word_examples=new_words[:10])
    if texts is not None:
        result.update(files=len(texts.files), texts=texts.count, not_text_lines=texts.not_text.lines,
                      not_text_first=[{"file": name, "line": line} for name, line in texts.not_text.first])
        if not args.json:
            print(f"read {texts.count} texts from {len(texts.files)} files", file=sys.stderr)
            if texts.not_text.lines:
                print(texts.not_text, file=sys.stderr)
    if args.json:
        _print_json(result)
        return
    what = f"{len(tokenizer)} words" if tokenizer.kind == "word" else f"a subword vocabulary of {len(tokenizer)} tokens"
    if init is not None:
        print(f"continued pre-training of {args.init}" + (f" with LoRA rank {args.lora}" if args.lora else "") + ": "
              + (f"added {result['new_words']} new words to its vocabulary ({', '.join(new_words[:5])}{', ...' if len(new_words) > 5 else ''}); "
                 if tokenizer.kind == "word" else "its subword vocabulary reads new words as pieces; ")
              + "the words it knew keep their ids")
    print(f"saved to {out}: a {recipe.objective} model, {what}, final loss {result['final_loss']:.3f}, {result['seconds']} s")


def cmd_fill_mask(args: argparse.Namespace) -> None:
    from learnjax.training.pretraining import fill_mask

    foundation = _load_foundation(args.model, args.json)
    predictions = fill_mask(foundation, args.text, top_k=args.top_k)
    subword = foundation.tokenizer.kind == "subword"
    note = ("a subword model predicts one token for the [MASK]: a whole word, the first piece of a longer one, "
            "or (## first) a piece that continues the word before")
    if args.json:
        data = {"text": args.text, "predictions": [{"word": p.word, "probability": p.probability, "piece": p.piece} for p in predictions]}
        _print_json({**data, "tokenizer": foundation.tokenizer.kind, **({"note": note} if subword else {})})
    else:
        for p in predictions:
            print(f"{p.word:>15}  {p.probability:6.1%}")
        if subword:
            print(f"({note})", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> None:
    from learnjax.models.generation import Sampling
    from learnjax.training.pretraining import NEXT_WORD_RECIPE, generate_text

    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    foundation = _load_foundation(args.model, args.json, NEXT_WORD_RECIPE)
    generated = generate_text(foundation, args.prompts, max_new_tokens=args.max_new_tokens, sampling=sampling, seed=args.seed)
    if args.json:
        _print_json({"model": str(args.model) if args.model else "built-in", "sampling": dataclasses.asdict(sampling), "seed": args.seed,
                     "results": [{"prompt": g.prompt, "text": g.text, "tokens": g.tokens, "ended": g.ended} for g in generated]})
    else:
        for g in generated:
            print(f"{g.prompt} {g.text}" if g.text else g.prompt)


def cmd_finetune(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import example_kind
    from learnjax.storage.checkpoints import check_writable_model_dir

    kind = example_kind(args.train)  # text/label: a classifier; prompt/response: an assistant
    check_writable_model_dir(args.out, overwrite=args.overwrite, reading_from=args.model)  # before any training
    (_finetune_assistant if kind == "assistant" else _finetune_classifier)(args)


def _report_skipped(args: argparse.Namespace, skipped: list[int] | None) -> None:
    """One line on stderr naming the rows --skip-bad-rows left out (the first five)."""
    if skipped and not args.json:
        lines = ", ".join(map(str, skipped[:5])) + (", ..." if len(skipped) > 5 else "")
        print(f"left out {len(skipped)} row{'s' if len(skipped) != 1 else ''} of {args.train} holding what cannot be text: "
              f"line{'s' if len(skipped) != 1 else ''} {lines}", file=sys.stderr)


def _finetune_classifier(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import read_labeled
    from learnjax.training.finetuning import FinetuneSettings, check_mode, finetune

    check_mode(args.mode)
    skipped = [] if args.skip_bad_rows else None
    texts, labels = read_labeled(args.train, skipped=skipped)  # checked before any model is loaded
    _report_skipped(args, skipped)
    foundation = _load_foundation(args.model, args.json)
    if foundation.objective != "masked":
        raise ValueError(f"{args.model} is a {foundation.objective} model, which writes text; a classifier is fine-tuned from a masked "
                         "model (or give prompt and response columns to make an assistant)")
    changes = {k: v for k, v in (("steps", args.steps), ("learning_rate", args.learning_rate)) if v is not None}
    settings = dataclasses.replace(FinetuneSettings(), **changes)
    started = time.perf_counter()
    checkpoints = _training_checkpoints(args, "classifier")
    keep = args.checkpoint_every is not None or args.resume
    with _options_named():
        classifier = finetune(foundation, texts, labels, mode=args.mode, settings=settings, seed=args.seed, progress=not args.json,
                              mesh=_mesh(args), fsdp=args.fsdp, checkpoint_dir=checkpoints.directory if keep else None,
                              checkpoint_every=args.checkpoint_every, resume=args.resume)
    out = classifier.save(args.out)
    checkpoints.remove()  # the finished model is saved
    result = {
        "out": str(out), "built": "classifier", "mode": args.mode, "examples": len(texts), "labels": list(classifier.labels),
        **({"skipped_lines": skipped} if skipped is not None else {}),
        "final_loss": classifier.history.loss[-1], "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        _print_json(result)
    else:
        print(f"saved a classifier to {out}: {args.mode} fine-tuning on {len(texts)} examples, labels {', '.join(classifier.labels)}, "
              f"final loss {result['final_loss']:.3f}")


def _finetune_assistant(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import read_instructions
    from learnjax.data.questions import Example, chat_ids
    from learnjax.training.instruction_tuning import ASSISTANT_RECIPE, MODES, SFTSettings, instruction_tune

    if args.mode not in MODES:
        why = " (a probe trains a classification head; an assistant has none)" if args.mode == "probe" else ""
        raise ValueError(f"an assistant is fine-tuned with --mode {', '.join(MODES)}; got {args.mode!r}{why}")
    if args.checkpoint_every is not None or args.resume:
        raise UsageError("--checkpoint-every and --resume checkpoint a classifier's training; instruction tuning "
                         "(prompt and response columns) runs in one go", args.command)
    skipped = [] if args.skip_bad_rows else None
    prompts, responses, lines = read_instructions(args.train, skipped=skipped)  # checked before any model is loaded
    _report_skipped(args, skipped)
    foundation = _load_foundation(args.model, args.json, ASSISTANT_RECIPE)
    if foundation.objective != "next-word":
        raise ValueError(f"{args.model} is a {foundation.objective} model, which does not write; an assistant is fine-tuned from a "
                         "next-word model (learnjax pretrain --objective next-word)")
    max_len = foundation.model.config.max_len
    for prompt, response, line in zip(prompts, responses, lines):
        n = len(chat_ids(foundation.tokenizer, prompt, response))
        if n > max_len:
            raise ValueError(f"{args.train} line {line}: the example has {n} tokens in the chat template; the model reads at most {max_len}")
    changes = {k: v for k, v in (("steps", args.steps), ("learning_rate", args.learning_rate)) if v is not None}
    settings = dataclasses.replace(SFTSettings(), **changes)
    started = time.perf_counter()
    assistant = instruction_tune(foundation, [Example(p, r) for p, r in zip(prompts, responses)], mode=args.mode, settings=settings,
                                 seed=args.seed, progress=not args.json, mesh=_mesh(args), fsdp=args.fsdp)
    out = assistant.save(args.out)
    result = {"out": str(out), "built": "assistant", "mode": args.mode, "examples": len(prompts),
              **({"skipped_lines": skipped} if skipped is not None else {}),
              "final_loss": assistant.history.loss[-1], "seconds": round(time.perf_counter() - started, 2)}
    if args.json:
        _print_json(result)
    else:
        print(f"saved an assistant to {out}: {args.mode} instruction tuning on {len(prompts)} examples, final loss {result['final_loss']:.3f}")


def cmd_ask(args: argparse.Namespace) -> None:
    from learnjax.training.instruction_tuning import Assistant

    assistant = Assistant.load(args.model)
    answers = assistant.answer(args.questions)
    if args.json:
        _print_json({"model": str(args.model), "results": [{"question": q, "answer": a} for q, a in zip(args.questions, answers)]})
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


def cmd_classify(args: argparse.Namespace) -> None:
    from learnjax.training.finetuning import TextClassifier

    if bool(args.texts) == (args.input is not None):
        raise UsageError("give the texts to label, or --input FILE, not both" if args.texts else "give texts to label, or --input FILE", args.command)
    if args.input is None and (args.output or args.format or args.input_format):
        raise UsageError("--output, --format and --input-format go with --input FILE", args.command)
    if args.input is not None:
        _classify_file(args)
        return
    classifier = TextClassifier.load(args.model)
    results = classifier.classify(args.texts, windows=args.windows)
    if args.json:
        _print_json({"model": str(args.model),
                     "results": [{"text": t, "label": label, "probability": p} for t, (label, p) in zip(args.texts, results)]})
    else:
        for text, (label, p) in zip(args.texts, results):
            print(f"{label} ({p:.1%})  {text}")


def _classify_file(args: argparse.Namespace) -> None:
    """`classify --input`: texts streamed from a file, results streamed to --output
    (written to a temporary file beside it, which replaces it only when complete)
    or to standard output."""
    from learnjax.data.labeled_files import input_format, iter_texts
    from learnjax.evaluation.classifiers import classify_in_batches, write_predictions
    from learnjax.files.atomic import replacing
    from learnjax.training.finetuning import TextClassifier

    kind = args.input_format or input_format(args.input)  # checked before the model loads
    if args.input != "-" and not Path(args.input).is_file():
        raise FileNotFoundError(f"input file {args.input!r} does not exist")
    output = args.output
    fmt = args.format or (_OUTPUT_SUFFIXES.get(output.suffix.lower(), "csv") if output else "jsonl" if args.json else "csv")
    if output is not None:
        if output.is_dir():
            raise ValueError(f"--output {str(output)!r} is a folder; name a file")
        if output.exists() and args.input != "-" and os.path.samefile(output, args.input):
            raise ValueError(f"--output {str(output)!r} is the input file; write the results to another file")
        if output.exists() and not args.overwrite:
            raise ValueError(f"--output {str(output)!r} exists; replace it with --overwrite, or choose another file")
    classifier = TextClassifier.load(args.model)
    texts = (text for _, text in iter_texts(args.input, kind))
    results = classify_in_batches(classifier, texts, batch_size=args.batch_size, windows=args.windows, progress=not args.json)
    if output is None:
        count = write_predictions(results, classifier.labels, sys.stdout, fmt)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with replacing(output, "w", encoding="utf-8", newline="") as f:
        count = write_predictions(results, classifier.labels, f, fmt)
    if args.json:
        _print_json({"model": str(args.model), "input": args.input, "output": str(output), "format": fmt, "texts": count})
    else:
        print(f"labeled {count} texts from {args.input}: {output} ({fmt})", file=sys.stderr)


_OUTPUT_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def cmd_evaluate(args: argparse.Namespace) -> None:
    from learnjax.data.labeled_files import read_labeled
    from learnjax.evaluation.classifiers import evaluate
    from learnjax.training.finetuning import TextClassifier

    texts, labels = read_labeled(args.test)  # checked before the model loads
    classifier = TextClassifier.load(args.model)
    evaluation = evaluate(classifier, texts, labels, batch_size=args.batch_size, windows=args.windows, progress=not args.json)
    if args.json:
        _print_json({"model": str(args.model), "test": str(args.test), **evaluation.to_dict()})
    else:
        print(evaluation.report())


EXPERIMENTS = {
    "label-efficiency": "fine-tuning vs. probe vs. scratch against the number of labels",
    "generation": "what the generative foundation model learned: next words, perplexity, facts by temperature",
    "instruction-tuning": "knowing versus saying: held-out questions after instruction tuning, and LoRA",
}


def cmd_experiment(args: argparse.Namespace) -> None:
    from learnjax import experiments
    from learnjax.storage.cache import entries_used

    with entries_used() as used:
        result = dict(getattr(experiments, args.name.replace("-", "_"))())
    cached = used[-1]["cached"]  # the experiment's own entry: the last one finished
    baseline = None
    if args.name == "label-efficiency":  # the classical baseline on the same splits, where scikit-learn is installed
        from learnjax.experiments.tfidf_baseline import tfidf_label_efficiency

        try:
            baseline = tfidf_label_efficiency(tuple(sorted({row["n_labels"] for row in result["rows"]})), tuple(result["seeds"]))
        except ModuleNotFoundError:
            baseline = None
    # The time it took when it was computed, which a cached run did not spend now.
    result = {"cached": cached, "seconds_when_computed": result.pop("seconds"), **result}
    if baseline is not None:
        result["baseline"] = baseline
    if args.json:
        _print_json(result)
        return
    took = f"experiment took {result['seconds_when_computed']:.0f} s" + (" when first run (read from the cache now)" if cached else "")
    if args.name == "label-efficiency":
        table = experiments.label_efficiency_table(result)
        if baseline is not None:
            from learnjax.experiments.tfidf_baseline import table_with_baseline

            table = table_with_baseline(table, baseline)
        print(table)
        print(f"\n{len(result['seeds'])} seeds per cell; learning rate chosen per cell on the dev set from {result['learning_rates']}; "
              f"{result['settings']['steps']} steps of batch {result['settings']['batch_size']} for every mode; {took}.")
        if baseline is not None:
            print(f"TF-IDF + logistic regression (scikit-learn): the same labeled subsets, seeds and test set; C chosen per cell "
                  f"on the dev set from {baseline['C_values']}.")
        else:
            print("(the classical baseline needs scikit-learn: pip install scikit-learn)")
    else:
        print(getattr(experiments, f"{args.name.replace('-', '_')}_summary")(result))
        print(f"\n{took}.")


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def cmd_cache_list(args: argparse.Namespace) -> None:
    from learnjax.storage.cache import cache_root, list_entries

    entries = list_entries()
    total = sum(e.bytes for e in entries)
    if args.json:
        _print_json({"cache": str(cache_root()), "entries": [e.to_dict() for e in entries], "total_bytes": total})
        return
    for e in entries:
        print(f"{e.name:<40} {_megabytes(e.bytes):>10}  {e.status}")
    stale = sum(e.status in ("stale", "outdated", "incomplete") for e in entries)
    print(f"{_megabytes(total)} in {len(entries)} entries in {cache_root()}"
          + (f"; `learnjax cache prune` removes the {stale} stale, outdated or incomplete" if stale else ""))


def cmd_cache_graph(args: argparse.Namespace) -> None:
    from learnjax.storage.cache import cache_root, entry_graph

    rows = entry_graph()
    if args.json:
        _print_json({"cache": str(cache_root()), "entries": rows})
        return
    for row in rows:
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f} s"
        print(f"{row['name']:<40} {row['status']:<10} {seconds:>9}  {row['modules']:>3} modules"
              + (f"  reads {', '.join(row['reads'])}" if row["reads"] else ""))
    total = sum(row["seconds"] or 0 for row in rows if row["status"] == "current")
    print(f"{len(rows)} entries in {cache_root()}; the current ones took {total:.0f} s to compute")


def cmd_cache_prune(args: argparse.Namespace) -> None:
    from learnjax.storage.cache import cache_root, prune

    removed, kept = prune(everything=args.all)
    freed = sum(e.bytes for e in removed)
    if args.json:
        _print_json({"cache": str(cache_root()), "removed": [e.to_dict() for e in removed], "freed_bytes": freed,
                     "kept": [e.to_dict() for e in kept]})
        return
    print(f"removed {len(removed)} entries ({_megabytes(freed)}) from {cache_root()}; kept {len(kept)}"
          + (f" ({', '.join(sorted({e.status for e in kept}))})" if kept else ""))


class _Version(argparse.Action):
    """`--version`, looked up only when asked: finding the installed package's
    metadata takes about a tenth of a second, a large part of `--help`'s time."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"learnjax {version('learnjax')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="learnjax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def devices(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--devices", type=_positive, help="devices to train on, data parallel (default: every visible one)")
        sub.add_argument("--fsdp", action="store_true", help="shard the parameters and optimizer state over the devices too (FSDP)")

    def command(group, name: str, help: str, func, runs_models: bool = True) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name), formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=func, runs_models=runs_models)
        sub.add_argument("--json", action="store_true", help="print machine-readable JSON (errors too, on stderr)")
        return sub

    def checkpointed(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--checkpoint-every", type=_positive, metavar="N",
                         help="save the whole training state every N steps (in --out's checkpoint/ folder), so an interrupted run can --resume")
        sub.add_argument("--resume", action="store_true",
                         help="continue an interrupted run from its last checkpoint; the other options must be the ones it was started with")

    p = command(commands, "pretrain", "Pre-train a foundation model by masked or next-word prediction (self-supervised).", cmd_pretrain)
    p.add_argument("--objective", choices=["masked", "next-word"],
                   help="masked (the default): fill in hidden words (a model that reads, BERT); next-word: continue the text (a model that writes, GPT)")
    p.add_argument("--corpus", nargs="+", metavar="PATH", help="text files or folders, one text per line (default: the built-in corpus)")
    p.add_argument("--strict", action="store_true",
                   help="refuse a --corpus line that is not text (NUL or bytes that are not UTF-8) instead of dropping those characters")
    p.add_argument("--init", type=Path, metavar="DIR",
                   help="continue pre-training this model on --corpus (a domain's text): its objective, tokenizer and size are kept")
    p.add_argument("--lora", type=_positive, metavar="RANK", help="with --init: train LoRA adapters of this rank and the token embeddings only")
    recipe = p.add_argument_group("recipe (default: the built-in recipe's)")
    recipe.add_argument("--tokenizer", choices=["word", "subword"],
                        help="subword (the default with --corpus): WordPiece pieces from --vocab-size tokens; word: whole words")
    recipe.add_argument("--vocab-size", type=_positive, help="tokens in a subword vocabulary, special tokens included; at most this many words (default: 8000)")
    recipe.add_argument("--max-len", type=_positive, help="tokens per row; a longer text is read as several rows "
                                                          "(default: 32; with --corpus, chosen from its texts' lengths)")
    recipe.add_argument("--d-model", type=_positive, help="width of the model's vectors (default: 64)")
    recipe.add_argument("--layers", type=_positive, help="Transformer blocks (default: 2)")
    recipe.add_argument("--heads", type=_positive, help="attention heads per block; must divide --d-model (default: 4)")
    recipe.add_argument("--d-ff", type=_positive, help="width of each block's MLP (default: twice --d-model)")
    recipe.add_argument("--steps", type=_positive, help="training steps (default: 1800; with --corpus, chosen from its size)")
    recipe.add_argument("--batch-size", type=_positive, help="rows per batch (default: 64)")
    recipe.add_argument("--learning-rate", type=float, help="peak learning rate (default: 0.005)")
    recipe.add_argument("--seed", type=_seed, help="random seed (default: 0)")
    p.add_argument("--out", required=True, type=Path, help="directory to save the model to: new, empty, or holding a model")
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
    checkpointed(p)
    devices(p)

    p = command(commands, "fill-mask", "Predict the word hidden behind [MASK].", cmd_fill_mask)
    p.add_argument("text", help='text with exactly one [MASK], e.g. "I drank [MASK]."')
    p.add_argument("--model", type=Path, help="a pre-trained model directory (default: the built-in foundation model)")
    p.add_argument("--top-k", type=_positive, default=5, help="how many predictions to show (default: 5)")

    p = command(commands, "generate", "Continue prompts with a next-word model.", cmd_generate)
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="one or more texts to continue")
    p.add_argument("--model", type=Path, help="a next-word model directory (default: the built-in generative foundation model)")
    p.add_argument("--max-new-tokens", type=_positive, default=16, help="the most tokens to add to each prompt (default: 16)")
    p.add_argument("--temperature", type=_temperature, default=0.0, help="0 for greedy decoding (the default), higher for more varied text")
    p.add_argument("--top-k", type=_top_k, default=0, help="sample only from the k most likely tokens (default: 0, no limit)")
    p.add_argument("--top-p", type=_top_p, default=1.0, help="sample only from the most likely tokens that make up p of the probability (default: 1)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed of the sampling (default: 0)")

    p = command(commands, "finetune", "Fine-tune a classifier (text and label columns) or an assistant (prompt and response columns).", cmd_finetune)
    p.add_argument("--model", type=Path, help="a pre-trained model directory (default: the built-in foundation model)")
    p.add_argument("--train", required=True, type=Path,
                   help="CSV, TSV or JSON Lines: 'text' and 'label' columns for a classifier, 'prompt' and 'response' for an assistant")
    p.add_argument("--out", required=True, type=Path, help="directory to save the model to: new, empty, or holding a model (not the --model directory)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="leave out rows of --train holding what cannot be text (bytes that are not UTF-8, NUL), and say which, "
                        "instead of refusing the file")
    devices(p)
    p.add_argument("--mode", default="full",
                   help="full (update everything), probe (frozen encoder; classifiers), lora (low-rank adapters) or scratch (no pre-training)")
    p.add_argument("--steps", type=_positive, help="training steps (default: 80)")
    p.add_argument("--learning-rate", type=float, help="peak learning rate (default: 0.001)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    checkpointed(p)

    def windows(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--windows", choices=["first", "average"],
                         help="a text longer than the model's rows: read its first window of tokens, or average over all of them "
                              "(default: as the classifier was fine-tuned; every window, unless it was saved before windows were recorded)")
        sub.add_argument("--batch-size", type=_positive, default=256, help="texts per batch (default: 256)")

    p = command(commands, "ask", "Ask an instruction-tuned assistant questions.", cmd_ask)
    p.add_argument("questions", nargs="+", metavar="QUESTION", help="one or more questions")
    p.add_argument("--model", required=True, type=Path, help="an assistant directory (learnjax finetune with prompt and response columns)")

    p = command(commands, "chat", "Talk to an assistant: one question per line, typed or piped in.", cmd_chat)
    p.add_argument("--model", required=True, type=Path, help="an assistant directory")

    p = command(commands, "classify", "Label texts with a fine-tuned classifier.", cmd_classify)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="one or more texts to label (or --input)")
    p.add_argument("--model", required=True, type=Path, help="a fine-tuned classifier directory")
    p.add_argument("--input", metavar="FILE", help="a file of texts to label: plain text, one per line, or CSV, TSV or JSON Lines "
                                                   "with a text field; - reads standard input")
    p.add_argument("--input-format", choices=["text", "csv", "tsv", "jsonl"], help="the format of --input (default: from its name; - is text)")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the results there (default: standard output)")
    p.add_argument("--format", choices=["csv", "tsv", "jsonl"], help="the results' format (default: from --output's name, else CSV)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    windows(p)

    p = command(commands, "evaluate", "Measure a fine-tuned classifier on a labeled test file: accuracy, precision, recall, F1, confusion matrix.",
                cmd_evaluate)
    p.add_argument("--model", required=True, type=Path, help="a fine-tuned classifier directory")
    p.add_argument("--test", required=True, type=Path, help="labeled examples with 'text' and 'label' columns (CSV, TSV or JSON Lines)")
    windows(p)

    p = command(commands, "experiment", "Run a measured experiment of the site and print its table.", cmd_experiment)
    p.add_argument("name", choices=list(EXPERIMENTS), help="; ".join(f"{name}: {what}" for name, what in EXPERIMENTS.items()))

    p = commands.add_parser("cache", help="List, graph or prune the cache of models and measurements ($LEARNJAX_CACHE).",
                            description="List, graph or prune the cache of models and measurements ($LEARNJAX_CACHE, else ~/.cache/learnjax).",
                            epilog=EXAMPLES["cache"], formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(actions, "list", "List the entries: size, and whether this version of the code reads them.", cmd_cache_list, runs_models=False)
    command(actions, "graph", "Show the entries as a graph: what each read, the seconds it took, and whether it is current.",
            cmd_cache_graph, runs_models=False)
    p = command(actions, "prune", "Remove the entries that this version of the code never reads.", cmd_cache_prune, runs_models=False)
    p.add_argument("--all", action="store_true", help="remove every entry (they are computed again when needed)")
    return parser


def run(argv: list[str]) -> str:
    """Runs a command in this process and returns what it printed (for pages and tests).

    >>> print(run(["fill-mask", "--top-k", "1", "The sky is [MASK]."]).split()[0])
    blue
    """
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    if status:
        raise RuntimeError(f"learnjax {' '.join(argv)} failed with status {status}")
    return out.getvalue()


def _report(command: str | None, message: str, json_output: bool, *, error: bool = True) -> None:
    """One line on stderr: `learnjax COMMAND: error: MESSAGE`, or a JSON object."""
    if json_output:
        print(json.dumps({"error": message, "command": command}, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"learnjax{' ' + command if command else ''}: {'error: ' if error else ''}{message}", file=sys.stderr)


def _manifest_bytes(directory: Path | None) -> bytes | None:
    from learnjax.storage.checkpoints import MANIFEST

    try:
        return (directory / MANIFEST).read_bytes() if directory else None
    except OSError:
        return None


def _interrupted(directory: Path | None, before: bytes | None) -> str:
    """What an interrupted command left in its output directory, said truthfully:
    a save replaces the manifest last, so comparing it tells."""
    if directory is None:
        return "interrupted"
    after = _manifest_bytes(directory)
    if after != before:
        return f"interrupted after the new model was saved to {directory}"
    said = f"interrupted; the model in {directory} is unchanged" if before else f"interrupted; nothing was saved to {directory}"
    from learnjax.storage.checkpoints import CHECKPOINT_FOLDER, TrainingCheckpoints

    step = TrainingCheckpoints(directory / CHECKPOINT_FOLDER, "").step()
    if step is not None:
        said += f"; the last checkpoint, at step {step}, is in {directory / CHECKPOINT_FOLDER}: run the same command with --resume to continue"
    return said


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        _report(e.command, str(e), "--json" in argv)
        return 2
    out = getattr(args, "out", None)  # the directory a command saves to
    before = _manifest_bytes(out) if out else None
    try:
        if args.runs_models:
            from learnjax.storage.cache import use_compilation_cache

            use_compilation_cache()  # a second run of a command loads its compiled steps
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not after main returns
    except KeyboardInterrupt:
        if args.debug:
            raise
        _report(args.command, _interrupted(out, before), args.json, error=False)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    except BrokenPipeError:
        # The reader went away (`| head -1`): stop quietly, as Unix tools do.
        # Python's own last flush of stdout would fail again: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped this way
    except UsageError as e:
        if args.debug:
            raise
        _report(args.command, str(e), args.json)
        return 2
    except (ValueError, OSError, RuntimeError) as e:
        if args.debug:
            raise
        _report(args.command, str(e), args.json)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
