"""Measures of a language model on text it never saw, read from its scores:
perplexity (a model that writes), cloze and agreement accuracy and masked-token
scores (a model that reads). Next-word accuracy, which lets the model write,
is in `next_word`."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from learnjax.data import corpus
from learnjax.models.transformer import NextWordModel
from learnjax.training.foundation import Foundation, fill_masks, require_objective
from learnjax.training.loops import padded_rows, predict
from learnjax.training.masking import mask_tokens
from learnjax.training.steps import next_word_loss, next_word_targets


@nnx.jit
def _next_word_nll(model: NextWordModel, tokens: jax.Array, segments: jax.Array) -> tuple[jax.Array, jax.Array]:
    loss, _ = next_word_loss(model, tokens, segments, segments > 0)
    _, weights = next_word_targets(tokens, segments, segments > 0)
    return loss * weights.sum(), weights.sum()


def perplexity(foundation: Foundation, texts: list[str], batch_size: int = 256) -> float:
    """Per-token perplexity of a next-word model on `texts`: exp of the mean
    negative log-probability of each word and of each text's `[END]`, the
    tokens `ngram.KneserNeyTrigram.perplexity` scores too."""
    require_objective(foundation, "next-word", "scores continuations")
    tokens, segments = foundation.tokenizer.encode_packed(texts, foundation.model.config.max_len, end=True)
    size = min(batch_size, len(tokens))
    tokens, segments = padded_rows(tokens, size), padded_rows(segments, size)
    sums = jax.device_get([_next_word_nll(foundation.model, tokens[i : i + size], segments[i : i + size]) for i in range(0, len(tokens), size)])
    return float(np.exp(sum(total for total, _ in sums) / sum(count for _, count in sums)))


def cloze_accuracy(foundation: Foundation, items: list[corpus.Cloze] | None = None, k: int = 5) -> dict[str, float]:
    """Top-1 and top-k accuracy on held-out cloze sentences."""
    items = corpus.cloze_sentences() if items is None else items
    predictions = fill_masks(foundation, [c.text for c in items], top_k=k)
    top1 = np.mean([p[0].word == c.answer for p, c in zip(predictions, items)])
    topk = np.mean([c.answer in {x.word for x in p} for p, c in zip(predictions, items)])
    return {"top1": float(top1), f"top{k}": float(topk), "n": len(items)}


def grammar_accuracy(foundation: Foundation, probes: list[corpus.GrammarProbe] | None = None) -> dict[str, float]:
    """Share of agreement probes whose top prediction has the right verb form."""
    probes = corpus.grammar_probes() if probes is None else probes
    predictions = fill_masks(foundation, [p.text for p in probes], top_k=1)
    return {"accuracy": float(np.mean([pred[0].word in p.accepted for pred, p in zip(predictions, probes)])), "n": len(probes)}


def masked_token_scores(foundation: Foundation, texts: list[str], mask_rate: float = 0.15, seed: int = 0) -> dict[str, float]:
    """How well hidden words of `texts` (held-out text) are recovered: accuracy and
    mean cross-entropy (loss) over the masked positions."""
    tokens = foundation.tokenizer.encode_batch(texts, foundation.model.config.max_len)
    inputs, targets, weights = jax.device_get(mask_tokens(jax.random.key(seed), tokens, len(foundation.tokenizer), mask_rate))
    logits = predict(foundation.model, inputs)
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    target_log_probs = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    n = max(weights.sum(), 1.0)
    return {
        "accuracy": float(((logits.argmax(-1) == targets) * weights).sum() / n),
        "loss": float(-(target_log_probs * weights).sum() / n),
    }
