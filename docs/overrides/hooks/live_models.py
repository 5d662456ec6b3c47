"""The site's own trained models, exported into the built site for its live widgets.

The widgets on the Learn pages (docs/javascripts/learnjax-widgets.js) run the
cached foundation models in the reader's browser; this hook writes them, as
`learnjax export` does, to `<site>/models/`: the masked foundation model
(`masked.json`, `masked.bin`) and the next-word one (`writer.json`,
`writer.bin`), and the Fine-tuning page's two spam filters, fine-tuned and
trained from scratch (`spam-full.*`, `spam-scratch.*`), and its tiny
assistant, LoRA merged (`assistant.*`). All come from the
learnjax cache, so a build after the first only loads and writes them: a few
hundred kB each, in about a second.
"""

from __future__ import annotations

from pathlib import Path

MODELS_FOLDER = "models"


def export_site_models(site_dir: str | Path) -> list[Path]:
    """Exports the site's cached models into `site_dir`/models/; returns the manifests."""
    from learnjax.experiments.live_models import site_assistant, spam_filters
    from learnjax.training.pretraining import foundation_model
    from learnjax.storage.export import export_model, write_web_model
    from learnjax.training.recipe import NEXT_WORD_RECIPE, SAVED_KINDS

    out = Path(site_dir) / MODELS_FOLDER
    written = []
    for name, recipe in (("masked", None), ("writer", NEXT_WORD_RECIPE)):
        foundation = foundation_model(recipe, progress=False)
        kind = SAVED_KINDS[foundation.objective]
        written.append(export_model(foundation.model, foundation.tokenizer, kind, out, name=name))
    for manifest, weights in [*spam_filters().values(), site_assistant()]:
        written.append(write_web_model(manifest, weights, out))
    return written


def on_post_build(config):
    export_site_models(config.site_dir)
