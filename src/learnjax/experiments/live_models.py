"""The fine-tuned models the Fine-tuning page's widgets run in the reader's browser.

The page trains two classifiers on the same 32 labeled messages
(`snippets/finetune_spam.py`): one fine-tuned from the foundation model, one
trained from scratch. Neither is kept by the page's run, so `spam_filters`
trains them once more, the same way, and keeps each as its web export
(`learnjax.storage.export.web_model`) in the cache: a build after the first
only reads them back. `assistant` does the same for the page's tiny assistant:
LoRA on the foundation that read FAQ text, 256 instruction examples, at the
learning rate the page's experiment chose, its adapters merged into the weights.
"""

from __future__ import annotations

import base64

from learnjax.storage.cache import cached_json

SPAM_FILTER_MODES = ("full", "scratch")
SPAM_FILTER_LABELS = 32  # labeled messages, as on the page


def _train_spam_filters(modes: tuple[str, ...], labels: int, seed: int) -> dict:
    import time

    from learnjax.data import messages
    from learnjax.storage.export import web_model
    from learnjax.training.finetuning import finetune
    from learnjax.training.pretraining import foundation_model

    started = time.perf_counter()
    foundation = foundation_model(progress=False)
    labeled = messages.balanced_subset(messages.labeled_splits()["pool"], labels, seed=seed)
    texts, names = [m.text for m in labeled], [m.label for m in labeled]
    exported = {}
    for mode in modes:
        classifier = finetune(foundation, texts, names, mode=mode, seed=seed, label_names=messages.LABEL_NAMES, max_len=messages.MESSAGE_MAX_LEN)
        manifest, weights = web_model(classifier.model, classifier.tokenizer, "classifier", name=f"spam-{mode}", labels=list(classifier.labels))
        exported[mode] = {"manifest": manifest, "weights": base64.b64encode(weights).decode("ascii")}
    return {"models": exported, "seconds": time.perf_counter() - started}


def spam_filters(modes: tuple[str, ...] = SPAM_FILTER_MODES, labels: int = SPAM_FILTER_LABELS, seed: int = 0) -> dict[str, tuple[dict, bytes]]:
    """Each mode's spam filter, trained on `labels` labeled messages, as a web
    export: its manifest and its weights (`write_web_model` writes them)."""
    result = cached_json("live-spam-filters", {"modes": tuple(modes), "labels": labels, "seed": seed}, _train_spam_filters)
    return {mode: (model["manifest"], base64.b64decode(model["weights"])) for mode, model in result["models"].items()}


ASSISTANT_EXAMPLES = 256  # instruction examples, as the page's largest cell


def _train_assistant(examples: int, seed: int, learning_rate: float) -> dict:
    import dataclasses
    import time

    from flax import nnx

    from learnjax.data.questions import training_examples
    from learnjax.experiments.tuned_runs import tuned_assistant
    from learnjax.models.lora import merge_lora
    from learnjax.storage.export import web_model
    from learnjax.training.pretraining import foundation_model
    from learnjax.training.sft import ASSISTANT_RECIPE, SFTSettings

    started = time.perf_counter()
    settings = dataclasses.replace(SFTSettings(), learning_rate=learning_rate)
    tuned = tuned_assistant(
        foundation_model(ASSISTANT_RECIPE, progress=False), training_examples(examples, seed), mode="lora", seed=seed, settings=settings
    )
    manifest, weights = web_model(merge_lora(nnx.clone(tuned.model)), tuned.tokenizer, "assistant", name="assistant")  # as `Assistant.save` merges
    return {"manifest": manifest, "weights": base64.b64encode(weights).decode("ascii"), "seconds": time.perf_counter() - started}


def assistant(learning_rate: float, examples: int = ASSISTANT_EXAMPLES, seed: int = 0) -> tuple[dict, bytes]:
    """The page's tiny assistant (LoRA, merged) as a web export: its manifest and
    its weights. `learning_rate`: the one the page's experiment chose for the cell."""
    result = cached_json("live-assistant", {"examples": examples, "seed": seed, "learning_rate": learning_rate}, _train_assistant)
    return result["manifest"], base64.b64decode(result["weights"])


def site_assistant() -> tuple[dict, bytes]:
    """`assistant` at the learning rate the Fine-tuning page's experiment chose
    for LoRA on the FAQ foundation with `ASSISTANT_EXAMPLES` examples."""
    from learnjax import experiments

    rows = experiments.instruction_tuning()["rows"]
    cell = ("mixed", "lora", ASSISTANT_EXAMPLES)
    return assistant(next(r["learning_rate"] for r in rows if (r["foundation"], r["mode"], r["n_examples"]) == cell))
