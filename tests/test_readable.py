"""The readable steps the Learn pages show compute what the library's fast ones compute."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from learnjax import mask_tokens
from learnjax.data import corpus
from learnjax.models.generation import encode_prompts, generate
from learnjax.models.transformer import MaskedLanguageModel, NextWordModel, TransformerConfig
from learnjax.text.tokenizer import Tokenizer
from learnjax.training import readable
from learnjax.training.masking import mask_words, masked_batch
from learnjax.training.steps import masked_prediction_loss, masked_prediction_step, next_word_loss, next_word_step

TOLERANCE = dict(rtol=2e-5, atol=2e-5)


@pytest.fixture(scope="module")
def data():
    texts = corpus.build_corpus(400)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts[:64], max_len=32)  # several texts per row
    return tokenizer, jnp.asarray(tokens[:8]), jnp.asarray(segments[:8])


def config(tokenizer):
    return TransformerConfig(len(tokenizer), max_len=32, d_model=32, n_layers=2, n_heads=4, d_ff=64)


@pytest.mark.parametrize("seed, rate", [(0, 0.15), (1, 0.25), (2, 0.5)])
def test_the_readable_masking_hides_what_the_compiled_masking_hides(data, seed, rate):
    tokenizer, tokens, _ = data
    key = jax.random.key(seed)
    for clear, compiled in zip(mask_words(key, tokens, len(tokenizer), rate),
                               mask_tokens(key, tokens, len(tokenizer), rate), strict=True):
        np.testing.assert_array_equal(clear, compiled)


def test_the_readable_encoder_scores_what_the_model_scores(data):
    tokenizer, tokens, segments = data
    model = MaskedLanguageModel(config(tokenizer), rngs=nnx.Rngs(0))
    np.testing.assert_allclose(readable.masked_word_scores(model, tokens, segments), model(tokens, segments), **TOLERANCE)


def test_the_readable_decoder_scores_what_the_model_scores(data):
    tokenizer, tokens, segments = data
    model = NextWordModel(config(tokenizer), rngs=nnx.Rngs(1))
    np.testing.assert_allclose(readable.next_word_scores(model, tokens, segments), model(tokens, segments), **TOLERANCE)


def test_scoring_every_position_gives_the_loss_of_scoring_the_hidden_ones(data):
    tokenizer, tokens, segments = data
    model = MaskedLanguageModel(config(tokenizer), rngs=nnx.Rngs(0))
    key = jax.random.key(3)
    inputs, targets, weights = mask_tokens(key, tokens, len(tokenizer), rate=0.25)
    batch = masked_batch(key, tokens, segments, len(tokenizer), rate=0.25)
    assert float(batch["weights"].sum()) == float(weights.sum())  # no hidden word left out of the slots
    clear = readable.masked_word_loss(model, inputs, segments, targets, weights)
    fast = masked_prediction_loss(model, batch)
    np.testing.assert_allclose(clear, fast, **TOLERANCE)


def parameters(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_one_readable_masked_step_updates_the_model_as_the_fast_step_does(data):
    tokenizer, tokens, segments = data
    clear_model = MaskedLanguageModel(config(tokenizer), rngs=nnx.Rngs(0))
    fast_model = nnx.clone(clear_model)
    key = jax.random.key(5)
    inputs, targets, weights = mask_tokens(key, tokens, len(tokenizer), rate=0.25)
    batch = masked_batch(key, tokens, segments, len(tokenizer), rate=0.25)
    clear = readable.masked_word_step(clear_model, nnx.Optimizer(clear_model, optax.sgd(1.0), wrt=nnx.Param),
                                      inputs, segments, targets, weights)
    fast = masked_prediction_step(fast_model, nnx.Optimizer(fast_model, optax.sgd(1.0), wrt=nnx.Param), batch)
    np.testing.assert_allclose(clear, fast, **TOLERANCE)
    for a, b in zip(parameters(clear_model), parameters(fast_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_readable_next_word_step_updates_the_model_as_the_fast_step_does(data):
    tokenizer, tokens, segments = data
    clear_model = NextWordModel(config(tokenizer), rngs=nnx.Rngs(2))
    fast_model = nnx.clone(clear_model)
    learn = segments > 0
    np.testing.assert_allclose(readable.next_word_loss(clear_model, tokens, segments, learn),
                               next_word_loss(fast_model, tokens, segments, learn), **TOLERANCE)
    clear = readable.next_word_step(clear_model, nnx.Optimizer(clear_model, optax.sgd(1.0), wrt=nnx.Param),
                                    tokens, segments, learn)
    fast = next_word_step(fast_model, nnx.Optimizer(fast_model, optax.sgd(1.0), wrt=nnx.Param), tokens, segments, learn)
    np.testing.assert_allclose(clear, fast, **TOLERANCE)
    for a, b in zip(parameters(clear_model), parameters(fast_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_readable_writing_loop_writes_what_the_compiled_one_writes(data, monkeypatch):
    tokenizer, *_ = data
    # The loop is what this checks (the scores are checked above, as the page runs them):
    # compiled once per text length, not operation by operation at each (25 -> 6 s with no compiled programs kept).
    monkeypatch.setattr(readable, "next_word_scores", nnx.jit(readable.next_word_scores))
    model = NextWordModel(config(tokenizer), rngs=nnx.Rngs(4))
    prompts = ["Today I went to the café and drank", "The sky is"]
    compiled = [g.tokens for g in generate(model, tokenizer, prompts, max_new_tokens=8)]
    clear = [[tokenizer.vocab[i] for i in readable.write(model, ids, max_new_tokens=8)]
             for ids in encode_prompts(tokenizer, prompts)]
    assert clear == compiled


def test_attention_weights_share_out_each_token_over_what_it_may_see(data):
    tokenizer, tokens, segments = data
    model = MaskedLanguageModel(config(tokenizer), rngs=nnx.Rngs(0))
    for causal in (False, True):
        _, layers = readable.transformer(model.encoder, tokens, segments, causal=causal)
        allowed = readable.attention_mask(segments, causal)[:, None]  # (B, 1, T, T)
        real = (segments > 0)[:, None, :, None]  # rows of real tokens
        for weights in layers:
            np.testing.assert_allclose(jnp.where(real, weights.sum(-1, keepdims=True), 1.0), 1.0, atol=1e-5)
            assert float(jnp.where(allowed | ~real, 0.0, weights).max()) == 0.0  # padding rows aside


def test_the_causal_mask_lets_a_token_see_only_itself_and_earlier_tokens():
    segments = jnp.array([[1, 1, 1, 2, 2, 0]])
    assert readable.attention_mask(segments, causal=True)[0].astype(int).tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    assert readable.attention_mask(segments)[0, 1].astype(int).tolist() == [1, 1, 1, 0, 0, 0]
