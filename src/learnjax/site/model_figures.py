"""Figures of what happens inside the Transformer: its two attention masks, and
the attention weights of a trained model on one sentence. Drawn with the site's
style (`learnjax.site.plots`); needs the `docs` extra."""

from __future__ import annotations

import numpy as np

from learnjax.site.plots import figure
from learnjax.text.tokenizer import CLS_ID
from learnjax.training import readable


def attention_of(foundation, text: str) -> tuple[list[str], list[np.ndarray]]:
    """The tokens of `text` as the model reads them ([CLS] first) and each
    layer's attention weights (heads, tokens, tokens), from the readable encoder.
    A `[MASK]` written in `text` is the hidden word, as in `fill_mask`."""
    ids = [CLS_ID, *foundation.tokenizer.encode(text, masks=True)]
    _, layers = readable.transformer(foundation.model.encoder, np.array([ids]))
    return [foundation.tokenizer.vocab[i] for i in ids], [np.asarray(w[0]) for w in layers]


def _heatmap(ax, values: np.ndarray, words: list[str], *, rows: bool, columns: bool):
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(words)), words if columns else [], rotation=90, fontsize=8)
    ax.set_yticks(range(len(words)), words if rows else [], fontsize=8)
    ax.grid(False)
    return image


def two_masks(words: list[str]):
    """The encoder's mask beside the decoder's: a dark cell where the token of
    its row may look at the token of its column."""
    segments = np.ones((1, len(words)), np.int32)
    masks = {
        "masked model (encoder): every token sees every token": readable.attention_mask(segments)[0],
        "next-word model (decoder): only itself and earlier ones": readable.attention_mask(segments, causal=True)[0],
    }
    fig, _ = figure(width=9.0, height=4.6)
    fig.clear()
    axes = fig.subplots(1, 2)
    for i, (ax, (title, mask)) in enumerate(zip(axes, masks.items())):
        _heatmap(ax, np.asarray(mask, np.float32), words, rows=i == 0, columns=True)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("looks at", fontsize=9)
    axes[0].set_ylabel("token", fontsize=9)
    return fig, axes


def attention_heads(words: list[str], layers: list[np.ndarray]):
    """One heatmap per layer (rows) and head (columns): how much each token
    (row of a map) takes from each token (column), each row adding up to 1."""
    n_layers, n_heads = len(layers), layers[0].shape[0]
    fig, _ = figure(width=2.6 * n_heads, height=2.6 * n_layers + 0.8)
    fig.clear()
    axes = fig.subplots(n_layers, n_heads, squeeze=False)
    for layer, row in enumerate(axes):
        for head, ax in enumerate(row):
            image = _heatmap(ax, layers[layer][head], words, rows=head == 0, columns=layer == n_layers - 1)
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    return fig, axes


def strongest_link(words: list[str], layers: list[np.ndarray], word: str) -> tuple[int, int, str, float]:
    """(layer, head, looked-at word, weight) where `word` gives its largest weight to another token."""
    row = words.index(word)
    best = max(
        (
            (layer, head, column)
            for layer in range(len(layers))
            for head in range(layers[layer].shape[0])
            for column in range(len(words))
            if column != row
        ),
        key=lambda lhc: layers[lhc[0]][lhc[1], row, lhc[2]],
    )
    layer, head, column = best
    return layer + 1, head + 1, words[column], float(layers[layer][head, row, column])
