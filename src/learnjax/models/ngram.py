"""A classical baseline for next-word prediction: a trigram model with
interpolated Kneser-Ney smoothing, counted in numpy.

Before neural networks, language models were counts: how often word w followed
the two words before it. Kneser-Ney smoothing is the best of the classical
recipes; it gives unseen continuations a share of probability by how many
different contexts a word completes. It reads the same token ids as the
Transformer (same tokenizer, same texts), so their perplexities compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnjax.text.tokenizer import CLS_ID, END_ID, Tokenizer


def trigrams(tokenizer: Tokenizer, texts) -> np.ndarray:
    """Every (u, v, w) of the texts (N, 3): w is each word and the final `[END]`,
    u and v the two tokens before it (`[CLS]` before a text's start)."""
    rows = []
    for text in texts:
        ids = [CLS_ID, CLS_ID, *tokenizer.encode(text), END_ID]
        rows.append(np.lib.stride_tricks.sliding_window_view(np.asarray(ids, np.int64), 3))
    return np.concatenate(rows)


def _discount(counts: np.ndarray) -> float:
    """Ney's estimate from the numbers of events seen once and twice."""
    n1, n2 = (counts == 1).sum(), (counts == 2).sum()
    return float(n1 / (n1 + 2 * n2)) if n1 else 0.5


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == query] for each query, 0 where the key is absent (keys sorted)."""
    at = np.clip(np.searchsorted(keys, queries), 0, len(keys) - 1)
    return np.where(keys[at] == queries, values[at], 0)


@dataclass
class KneserNeyTrigram:
    vocab_size: int
    trigram_keys: np.ndarray  # sorted (u * V + v) * V + w
    trigram_counts: np.ndarray
    context_keys: np.ndarray  # sorted u * V + v
    context_counts: np.ndarray  # c(u, v, .)
    context_types: np.ndarray  # distinct w after (u, v)
    continuations: np.ndarray  # (V, V): distinct u before (v, w)
    unigram: np.ndarray  # (V,): P(w) by the distinct words before it
    d3: float
    d2: float

    @classmethod
    def fit(cls, tokenizer: Tokenizer, texts) -> KneserNeyTrigram:
        V = len(tokenizer)
        u, v, w = trigrams(tokenizer, texts).T
        keys, counts = np.unique((u * V + v) * V + w, return_counts=True)
        contexts, first = np.unique(keys // V, return_index=True)
        context_counts = np.add.reduceat(counts, first)
        context_types = np.diff(np.append(first, len(keys)))
        continuations = np.zeros((V, V), np.int64)
        np.add.at(continuations, (keys // V % V, keys % V), 1)  # each distinct (u, v, w) adds one u to (v, w)
        bigram_types = np.zeros((V, V), bool)
        bigram_types[v, w] = True
        unigram = (bigram_types.sum(0) + 1) / (bigram_types.sum() + V)  # never zero
        return cls(
            V,
            keys,
            counts,
            contexts,
            context_counts,
            context_types,
            continuations,
            unigram,
            _discount(counts),
            _discount(continuations[continuations > 0]),
        )

    def probabilities(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        """P(w | u, v) for arrays of token ids."""
        V = self.vocab_size
        # Bigram level: continuation counts, backing off to the unigram.
        cont = self.continuations[v, w]
        cont_total = self.continuations[v].sum(1)
        cont_types = (self.continuations[v] > 0).sum(1)
        safe = np.maximum(cont_total, 1)
        p2 = np.where(
            cont_total > 0,
            np.maximum(cont - self.d2, 0) / safe + self.d2 * cont_types / safe * self.unigram[w],
            self.unigram[w],
        )
        # Trigram level: raw counts, backing off to the bigram level.
        count = _lookup(self.trigram_keys, self.trigram_counts, (u * V + v) * V + w)
        context = u * V + v
        total = _lookup(self.context_keys, self.context_counts, context)
        types = _lookup(self.context_keys, self.context_types, context)
        safe = np.maximum(total, 1)
        return np.where(total > 0, np.maximum(count - self.d3, 0) / safe + self.d3 * types / safe * p2, p2)

    def perplexity(self, tokenizer: Tokenizer, texts) -> float:
        """exp of the mean negative log-probability of each word and `[END]`."""
        u, v, w = trigrams(tokenizer, texts).T
        return float(np.exp(-np.log(self.probabilities(u, v, w)).mean()))
