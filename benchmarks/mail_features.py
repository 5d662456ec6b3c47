"""What a model pre-trained on the generated mail learned, read without fine-tuning:

    python -m benchmarks.mail_features MODEL_DIR [--json out.json]

MODEL_DIR is a model of `learnjax pretrain --corpus` on `learnjax.data.mail`'s
mail (e.g. `python -m benchmarks.real_mail --keep MODEL_DIR`). Prints, for it
and for a random encoder of the same shape:

- its pre-training loss, by tenths of the run, and the unigram entropy of the
  corpus's tokens (what a model that learned only word frequencies scores);
- embedding neighbours: of the topic words that are one token, the share of
  their ten nearest tokens (cosine) that are words of the same topic, and of
  the same label (spam or ham);
- a frozen-feature probe by layer and pooling: logistic regression (its C
  chosen on a dev set) on the [CLS] vector or the mean of the tokens' vectors
  after the embeddings and after each block, averaged over a message's
  windows; mean held-out accuracy at 32 and 128 labels, three subsets each.

A classifier can only be as good as what its features hold: if the probe on
the pre-trained model scores no better than on the random one, pre-training
did not learn what tells the labels apart, whatever fine-tuning does after.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from learnjax.data.mail import HAM, SPAM, MailWriter, balanced_mails, mail_texts
from learnjax.models.transformer import Transformer, positions_in_segment
from learnjax.text.tokenizer import PAD_ID, SPECIAL_TOKENS
from learnjax.training.foundation import Foundation

C_VALUES = (0.01, 0.1, 1.0, 10.0, 100.0)
POOL, DEV, TEST = 400, 200, 400


def loss_by_tenths(foundation: Foundation) -> list[float]:
    loss = np.asarray(foundation.history.loss)
    return [round(float(part.mean()), 2) for part in np.array_split(loss, 10)]


def unigram_entropy(foundation: Foundation, megabytes: float = 0.5) -> float:
    """Entropy (nats) of the token frequencies of generated mail: the loss of predicting every token by its frequency alone."""
    counts = collections.Counter(i for text in mail_texts(megabytes, stream=3) for i in foundation.tokenizer.encode(text))
    p = np.array(list(counts.values()), float) / sum(counts.values())
    return float(-(p * np.log(p)).sum())


def topic_of_tokens(foundation: Foundation) -> dict[int, tuple[str, int]]:
    """Token id of each topic word that the vocabulary holds whole: its (label, topic)."""
    writer, tokenizer, found = MailWriter(0), foundation.tokenizer, {}
    for label in (SPAM, HAM):
        for topic, words in enumerate(writer.topics[label]):
            for word in words:
                pieces = [i for i in tokenizer.encode(word) if tokenizer.vocab[i] not in SPECIAL_TOKENS]
                if len(pieces) == 1:
                    found[pieces[0]] = (label, topic)
    return found


def neighbours(embeddings: np.ndarray, topic_of: dict[int, tuple[str, int]], k: int = 10) -> dict:
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    ids = list(topic_of)
    similarity = unit[ids] @ unit.T
    similarity[np.arange(len(ids)), ids] = -np.inf  # not itself
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    same_topic = np.mean([[topic_of.get(j) == topic_of[i] for j in row] for i, row in zip(ids, nearest)])
    same_label = np.mean([[topic_of.get(j, (None,))[0] == topic_of[i][0] for j in row] for i, row in zip(ids, nearest)])
    return {"topic_words": len(ids), "same_topic": round(float(same_topic), 3), "same_label": round(float(same_label), 3)}


def layer_features(encoder: Transformer, tokenizer, texts: list[str], max_len: int) -> dict[str, np.ndarray]:
    """Per text (mean over its windows): the [CLS] vector and the tokens' mean after the embeddings and each block."""

    @jax.jit
    def run(rows):
        segments = (rows != PAD_ID).astype(jnp.int32)  # (B, T)
        allowed = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)
        x = encoder.token_embed(rows) + encoder.position_embed(positions_in_segment(segments))  # (B, T, D)
        outputs = [x]
        for block in encoder.blocks:
            x, _ = block(x, allowed)
            outputs.append(x)
        outputs[-1] = encoder.ln_final(x)
        keep = segments[..., None].astype(x.dtype)
        return {**{f"cls{i}": o[:, 0] for i, o in enumerate(outputs)},
                **{f"mean{i}": (o * keep).sum(1) / keep.sum(1) for i, o in enumerate(outputs)}}

    rows, owners = tokenizer.encode_windows(texts, max_len)
    parts = [run(jnp.asarray(rows[i : i + 256])) for i in range(0, len(rows), 256)]
    owners, counts = np.asarray(owners), np.bincount(owners, minlength=len(texts))[:, None]
    features = {}
    for name in parts[0]:
        by_window = np.concatenate([np.asarray(p[name]) for p in parts])
        summed = np.zeros((len(texts), by_window.shape[1]))
        np.add.at(summed, owners, by_window)
        features[name] = summed / counts
    return features


def probe(features: dict[str, dict[str, np.ndarray]], mails: dict[str, list], sizes=(32, 128), seeds=(0, 1, 2)) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    truth = {split: np.array([m.label == SPAM for m in items]) for split, items in mails.items()}
    where = {id(m): i for i, m in enumerate(mails["pool"])}
    results = {}
    for name in features["pool"]:
        results[name] = {}
        for n in sizes:
            scores = []
            for seed in seeds:
                chosen = [where[id(m)] for m in balanced_mails(mails["pool"], n, seed)]
                fitted = [make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(features["pool"][name][chosen], truth["pool"][chosen])
                          for C in C_VALUES]
                best = max(fitted, key=lambda model: model.score(features["dev"][name], truth["dev"]))
                scores.append(best.score(features["test"][name], truth["test"]))
            results[name][n] = round(float(np.mean(scores)), 3)
    return results


def measure(model_dir: Path) -> dict:
    foundation = Foundation.load(model_dir)
    labeled = MailWriter(0, 1).labeled(POOL + DEV)
    mails = {"pool": labeled[:POOL], "dev": labeled[POOL:], "test": MailWriter(0, 2).labeled(TEST)}
    topic_of = topic_of_tokens(foundation)
    max_len = foundation.model.config.max_len
    results = {"loss_by_tenths": loss_by_tenths(foundation), "unigram_entropy": round(unigram_entropy(foundation), 2)}
    encoders = {"pre-trained": foundation.model.encoder, "random": Transformer(foundation.model.config, rngs=nnx.Rngs(1))}
    for name, encoder in encoders.items():
        embeddings = np.asarray(encoder.token_embed.embedding[...])
        features = {split: layer_features(encoder, foundation.tokenizer, [m.text for m in items], max_len) for split, items in mails.items()}
        results[name] = {"neighbours": neighbours(embeddings, topic_of), "probe": probe(features, mails)}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = measure(args.model)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
