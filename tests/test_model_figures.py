"""The pictures of the Transformer's insides draw the masks and weights the model uses."""

import numpy as np
import pytest

from learnjax import foundation_model
from learnjax.site.model_figures import attention_heads, attention_of, strongest_link, two_masks

CAFE = "Today I went to the café and drank [MASK]."


def drawn(ax) -> np.ndarray:
    return np.asarray(ax.get_images()[0].get_array())


def test_the_two_masks_show_every_token_seeing_all_and_only_earlier_ones():
    words = ["[CLS]", "today", "i", "drank", "coffee"]
    _, (encoder, decoder) = two_masks(words)
    assert drawn(encoder).tolist() == np.ones((5, 5)).tolist()
    assert drawn(decoder).tolist() == np.tril(np.ones((5, 5))).tolist()
    assert [t.get_text() for t in encoder.get_yticklabels()] == words


@pytest.fixture(scope="module")
def cafe():
    return attention_of(foundation_model(), CAFE)


def test_the_attention_figure_draws_every_head_of_every_layer_of_the_trained_model(cafe):
    words, layers = cafe
    model = foundation_model().model
    assert words[0] == "[CLS]" and "[MASK]" in words and "café" in words
    assert len(layers) == model.config.n_layers and layers[0].shape == (model.config.n_heads, len(words), len(words))
    _, axes = attention_heads(words, layers)
    assert axes.shape == (model.config.n_layers, model.config.n_heads)
    for layer, row in enumerate(axes):
        for head, ax in enumerate(row):
            np.testing.assert_array_equal(drawn(ax), layers[layer][head])
    np.testing.assert_allclose(np.stack(layers).sum(-1), 1.0, atol=1e-5)  # each token shares out all its attention


def test_the_strongest_link_is_the_largest_weight_to_another_token(cafe):
    words, layers = cafe
    layer, head, word, weight = strongest_link(words, layers, "[MASK]")
    row = words.index("[MASK]")
    others = np.stack(layers)[:, :, row, :].copy()
    others[:, :, row] = -1
    assert weight == pytest.approx(others.max())
    assert layers[layer - 1][head - 1, row, words.index(word)] == pytest.approx(weight)
