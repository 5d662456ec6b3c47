"""The spam filters the Fine-tuning page's widget runs in the reader's browser.

The page trains two classifiers on the same 32 labeled messages
(`snippets/finetune_spam.py`): one fine-tuned from the foundation model, one
trained from scratch. Neither is kept by the page's run, so `spam_filters`
trains them once more, the same way, and keeps each as its web export
(`learnjax.storage.export.web_model`) in the cache: a build after the first
only reads them back.
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
