"""`learnjax pretrain`, `fill-mask` and `generate`: foundation models, made and asked."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from learnjax.cli.common import (
    RECIPE_OPTIONS,
    UsageError,
    add_checkpoint_options,
    add_command,
    add_device_options,
    dataclass_defaults,
    device_mesh,
    load_foundation,
    options_named,
    positive,
    print_json,
    seed_number,
    temperature_number,
    top_k_number,
    top_p_number,
    training_checkpoints,
)

RECIPE = dataclass_defaults("learnjax.training.recipe", "PretrainRecipe")  # the help states them

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
}


def cmd_pretrain(args: argparse.Namespace) -> None:
    from learnjax.data.textfiles import TextLines
    from learnjax.storage.checkpoints import check_writable_model_dir
    from learnjax.training.foundation import Foundation
    from learnjax.training.pretraining import pretrain
    from learnjax.training.recipe import SAVED_KINDS, CorpusShape, PretrainRecipe, corpus_recipe

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
    changes = {
        field: value
        for field, option in RECIPE_OPTIONS.items()
        if field in fields and (value := getattr(args, option[2:].replace("-", "_"))) is not None
    }
    mesh = device_mesh(args)
    started = time.perf_counter()
    chosen: dict[str, str] = {}
    with options_named():
        if init is not None:
            recipe = init.continuing_recipe(**changes)
        else:
            recipe = PretrainRecipe(**changes)  # what is given, checked before the corpus is read
            if texts is not None:  # real text: a subword vocabulary, rows and steps chosen from the corpus
                recipe, chosen = corpus_recipe(CorpusShape.measure(texts), **changes)
        checkpoints = training_checkpoints(args, SAVED_KINDS[recipe.objective])
        resumed_at = checkpoints.step() if args.resume else None
        keep = args.checkpoint_every is not None or args.resume
        foundation = pretrain(
            recipe,
            texts,
            init=init,
            lora_rank=args.lora,
            progress=not args.json,
            mesh=mesh,
            fsdp=args.fsdp,
            checkpoint_dir=checkpoints.directory if keep else None,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
        )
    out = foundation.save(args.out)
    checkpoints.remove()  # the finished model is saved
    tokenizer = foundation.tokenizer
    result = {
        "out": str(out),
        "objective": recipe.objective,
        "tokenizer": tokenizer.kind,
        "vocabulary": len(tokenizer),
        "max_len": recipe.max_len,
        "d_model": recipe.d_model,
        "layers": recipe.n_layers,
        "heads": recipe.n_heads,
        "d_ff": recipe.d_ff,
        "steps": recipe.steps,
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.learning_rate,
        "devices": mesh.size if mesh is not None else 1,
        "fsdp": args.fsdp,
        "final_loss": foundation.history.loss[-1],
        "seconds": round(time.perf_counter() - started, 2),
    }
    if chosen:
        result["chosen_from_corpus"] = chosen
    if resumed_at is not None:
        result["resumed_at_step"] = resumed_at
    if init is not None:
        new_words = tokenizer.vocab[len(init.tokenizer) :]
        result.update(init=str(args.init), lora_rank=args.lora, new_words=len(new_words), new_word_examples=new_words[:10])
    if texts is not None:
        result.update(
            files=len(texts.files),
            texts=texts.count,
            not_text_lines=texts.not_text.lines,
            not_text_first=[{"file": name, "line": line} for name, line in texts.not_text.first],
        )
        if not args.json:
            print(f"read {texts.count} texts from {len(texts.files)} files", file=sys.stderr)
            if chosen:  # notes on stderr, after the run, as the others: an error stays one line, stdout holds the result
                print(
                    "chosen from the corpus (set any of them to choose yourself):\n" + "".join(f"  {line}\n" for line in chosen.values()),
                    end="",
                    file=sys.stderr,
                )
            if texts.not_text.lines:
                print(texts.not_text, file=sys.stderr)
    if args.json:
        print_json(result)
        return
    what = f"{len(tokenizer)} words" if tokenizer.kind == "word" else f"a subword vocabulary of {len(tokenizer)} tokens"
    if init is not None:
        print(
            f"continued pre-training of {args.init}"
            + (f" with LoRA rank {args.lora}" if args.lora else "")
            + ": "
            + (
                f"added {result['new_words']} new words to its vocabulary ({', '.join(new_words[:5])}{', ...' if len(new_words) > 5 else ''}); "
                if tokenizer.kind == "word"
                else "its subword vocabulary reads new words as pieces; "
            )
            + "the words it knew keep their ids"
        )
    print(f"saved to {out}: a {recipe.objective} model, {what}, final loss {result['final_loss']:.3f}, {result['seconds']} s")


def cmd_fill_mask(args: argparse.Namespace) -> None:
    from learnjax.training.foundation import fill_mask

    foundation = load_foundation(args.model, args.json)
    predictions = fill_mask(foundation, args.text, top_k=args.top_k)
    subword = foundation.tokenizer.kind == "subword"
    note = (
        "a subword model predicts one token for the [MASK]: a whole word, the first piece of a longer one, "
        "or (## first) a piece that continues the word before"
    )
    if args.json:
        data = {"text": args.text, "predictions": [{"word": p.word, "probability": p.probability, "piece": p.piece} for p in predictions]}
        print_json({**data, "tokenizer": foundation.tokenizer.kind, **({"note": note} if subword else {})})
    else:
        for p in predictions:
            print(f"{p.word:>15}  {p.probability:6.1%}")
        if subword:
            print(f"({note})", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> None:
    from learnjax.models.generation import Sampling
    from learnjax.training.recipe import NEXT_WORD_RECIPE
    from learnjax.training.writing import generate_text

    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    foundation = load_foundation(args.model, args.json, NEXT_WORD_RECIPE)
    generated = generate_text(foundation, args.prompts, max_new_tokens=args.max_new_tokens, sampling=sampling, seed=args.seed)
    if args.json:
        print_json(
            {
                "model": str(args.model) if args.model else "built-in",
                "sampling": dataclasses.asdict(sampling),
                "seed": args.seed,
                "results": [{"prompt": g.prompt, "text": g.text, "tokens": g.tokens, "ended": g.ended} for g in generated],
            }
        )
    else:
        for g in generated:
            print(f"{g.prompt} {g.text}" if g.text else g.prompt)


def add_commands(commands) -> None:
    """`pretrain`, `fill-mask` and `generate`."""
    p = add_command(commands, EXAMPLES, "pretrain", "Pre-train a foundation model by masked or next-word prediction (self-supervised).", cmd_pretrain)
    p.add_argument(
        "--objective",
        choices=["masked", "next-word"],
        help="masked (the default): fill in hidden words (a model that reads, BERT); next-word: continue the text (a model that writes, GPT)",
    )
    p.add_argument("--corpus", nargs="+", metavar="PATH", help="text files or folders, one text per line (default: the built-in corpus)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse a --corpus line that is not text (NUL or bytes that are not UTF-8) instead of dropping those characters",
    )
    p.add_argument(
        "--init",
        type=Path,
        metavar="DIR",
        help="continue pre-training this model on --corpus (a domain's text): its objective, tokenizer and size are kept",
    )
    p.add_argument("--lora", type=positive, metavar="RANK", help="with --init: train LoRA adapters of this rank and the token embeddings only")
    recipe = p.add_argument_group("recipe (default: the built-in recipe's)")
    recipe.add_argument(
        "--tokenizer",
        choices=["word", "subword"],
        help="subword (the default with --corpus): WordPiece pieces from --vocab-size tokens; word: whole words",
    )
    recipe.add_argument(
        "--vocab-size",
        type=positive,
        help=f"tokens in a subword vocabulary, special tokens included; at most this many words (default: {RECIPE['vocab_size']}; with --corpus, chosen for it)",
    )
    recipe.add_argument(
        "--max-len",
        type=positive,
        help=f"tokens per row; a longer text is read as several rows (default: {RECIPE['max_len']}; with --corpus, chosen from its texts' lengths)",
    )
    recipe.add_argument("--d-model", type=positive, help=f"width of the model's vectors (default: {RECIPE['d_model']})")
    recipe.add_argument("--layers", type=positive, help=f"Transformer blocks (default: {RECIPE['n_layers']})")
    recipe.add_argument("--heads", type=positive, help=f"attention heads per block; must divide --d-model (default: {RECIPE['n_heads']})")
    recipe.add_argument("--d-ff", type=positive, help="width of each block's MLP (default: twice --d-model)")
    recipe.add_argument("--steps", type=positive, help=f"training steps (default: {RECIPE['steps']}; with --corpus, chosen from its size)")
    recipe.add_argument("--batch-size", type=positive, help=f"rows per batch (default: {RECIPE['batch_size']})")
    recipe.add_argument("--learning-rate", type=float, help=f"peak learning rate (default: {RECIPE['learning_rate']:g})")
    recipe.add_argument("--seed", type=seed_number, help=f"random seed (default: {RECIPE['seed']})")
    p.add_argument("--out", required=True, type=Path, help="directory to save the model to: new, empty, or holding a model")
    p.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
    add_checkpoint_options(p)
    add_device_options(p)

    p = add_command(commands, EXAMPLES, "fill-mask", "Predict the word hidden behind [MASK].", cmd_fill_mask)
    p.add_argument("text", help='text with exactly one [MASK], e.g. "I drank [MASK]."')
    p.add_argument("--model", type=Path, help="a pre-trained model directory (default: the built-in foundation model)")
    p.add_argument("--top-k", type=positive, default=5, help="how many predictions to show (default: 5)")

    p = add_command(commands, EXAMPLES, "generate", "Continue prompts with a next-word model.", cmd_generate)
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="one or more texts to continue")
    p.add_argument("--model", type=Path, help="a next-word model directory (default: the built-in generative foundation model)")
    p.add_argument("--max-new-tokens", type=positive, default=16, help="the most tokens to add to each prompt (default: 16)")
    p.add_argument("--temperature", type=temperature_number, default=0.0, help="0 for greedy decoding (the default), higher for more varied text")
    p.add_argument("--top-k", type=top_k_number, default=0, help="sample only from the k most likely tokens (default: 0, no limit)")
    p.add_argument(
        "--top-p", type=top_p_number, default=1.0, help="sample only from the most likely tokens that make up p of the probability (default: 1)"
    )
    p.add_argument("--seed", type=seed_number, default=0, help="random seed of the sampling (default: 0)")
