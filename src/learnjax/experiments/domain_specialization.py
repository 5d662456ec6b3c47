"""Domain specialization: continued pre-training of a foundation model on a
domain's text (a small clinic's notes), and what it costs in general knowledge.

A general model has never read how a clinic treats a fever or a fracture; most
of the words for it are not even in its vocabulary. Continued pre-training
(`learnjax.training.pretraining.pretrain` with `init`) reads the clinic's notes (`learnjax.data.clinic`): the
new words join the vocabulary after the old ones (whose ids stay), and the
model learns them in context. The experiment measures cloze accuracy on
held-out clinic sentences (which treatment goes with which condition) and on
the general corpus's held-out cloze sentences, before and after: for full
training on the notes alone, on the notes mixed with general text (which keeps
what the model knew), and for LoRA (`learnjax.models.lora`: adapters and the token
embeddings only).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from learnjax.data import corpus
from learnjax.data.clinic import clinic_cloze, clinic_notes
from learnjax.data.corpus import Cloze
from learnjax.storage.cache import cached_json
from learnjax.training.foundation import fill_masks
from learnjax.training.pretraining import foundation_model, pretrain


@dataclass(frozen=True)
class DomainSettings:
    """The continued pre-training budget, the same for every run (small: the
    experiment runs on every cold site build)."""

    n_notes: int = 1500
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 10
    lora_rank: int = 8
    general_share: float = 0.5  # of the texts, in the run that keeps reading general text


def _domain_specialization(settings: dict) -> dict:
    started = time.perf_counter()
    s = DomainSettings(**settings)
    foundation = foundation_model()
    notes, domain_items, general_items = clinic_notes(s.n_notes), clinic_cloze(), corpus.cloze_sentences()
    # The general run reads the notes and as many texts again of the corpus the model was pre-trained on.
    mixed = notes + corpus.build_corpus(round(s.n_notes * s.general_share / (1 - s.general_share)))
    recipe = foundation.continuing_recipe(steps=s.steps, batch_size=s.batch_size, learning_rate=s.learning_rate, warmup_steps=s.warmup_steps)
    rows = [{"model": "general model (before)", **_scores(foundation, domain_items, general_items)}]
    runs = (
        ("full: clinic notes", notes, None),
        (f"full: notes + {s.general_share:.0%} general text", mixed, None),
        (f"LoRA rank {s.lora_rank} + embeddings: clinic notes", notes, s.lora_rank),
    )
    for name, texts, rank in runs:
        began = time.perf_counter()
        specialized = pretrain(recipe, texts, init=foundation, lora_rank=rank)
        rows.append({"model": name, **_scores(specialized, domain_items, general_items), "seconds": time.perf_counter() - began})
    return {
        "rows": rows,
        "new_words": specialized.tokenizer.vocab[len(foundation.tokenizer) :],
        "domain_answers_known_before": sum(item.answer in foundation.tokenizer.ids for item in domain_items),
        "domain_items": len(domain_items),
        "general_items": len(general_items),
        "notes": len(notes),
        "examples": {"note": notes[0], "cloze": domain_items[0].text, "answer": domain_items[0].answer},
        "settings": settings,
        "seconds": time.perf_counter() - started,
    }


def _scores(foundation, domain_items: list[Cloze], general_items: list[Cloze]) -> dict:
    """Top-1 and top-5 cloze accuracy on both sets, from one batch of predictions."""
    items = domain_items + general_items
    predictions = fill_masks(foundation, [c.text for c in items], top_k=5)
    top1 = [p[0].word == c.answer for p, c in zip(predictions, items)]
    top5 = [c.answer in {x.word for x in p} for p, c in zip(predictions, items)]
    n = len(domain_items)
    share = lambda hits: sum(hits) / len(hits)
    return {"domain_top1": share(top1[:n]), "domain_top5": share(top5[:n]), "general_top1": share(top1[n:]), "general_top5": share(top5[n:])}


def domain_specialization(settings: DomainSettings = DomainSettings()) -> dict:
    """Clinic and general cloze accuracy of the foundation model before and
    after continued pre-training on the clinic's notes: fully, fully with
    general text mixed in, and with LoRA. Each row's `seconds` is its run's."""
    return cached_json("domain-specialization", {"settings": dataclasses.asdict(settings)}, _domain_specialization)


def domain_table(result: dict) -> str:
    """The experiment as a Markdown table: one row per model."""
    lines = ["| model | clinic cloze top-1 | clinic top-5 | general cloze top-1 | general top-5 |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(
            f"| {row['model']} | {row['domain_top1']:.0%} | {row['domain_top5']:.0%} | {row['general_top1']:.0%} | {row['general_top5']:.0%} |"
        )
    return "\n".join(lines)
