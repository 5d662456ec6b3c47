"""Next-word prediction and generation: the objective, the decoder's causality,
the compiled sampler, and what the generative foundation model learned."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from learnjax import experiments
from learnjax.data import corpus
from learnjax.models.generation import Sampling, encode_prompts, generate, prompt_rows, sample_next
from learnjax.models.transformer import NextWordModel, TransformerConfig
from learnjax.text.tokenizer import CLS_ID, END_ID, PAD_ID, Tokenizer
from learnjax.training.diagnostics import count_compilations
from learnjax.training.steps import next_word_targets


@pytest.fixture(scope="module")
def small():
    texts = corpus.build_corpus(400)
    tokenizer = Tokenizer.from_texts(texts)
    model = NextWordModel(TransformerConfig(len(tokenizer), 32, 32, 2, 4, 64), rngs=nnx.Rngs(0))
    return model, tokenizer


PROMPTS = ["Today I went to the café and drank", "The sky is", "Every day the pilot drives to the", "Yesterday"]


def test_targets_are_the_next_token_of_the_same_text_and_only_real_ones():
    tokens = jnp.array([[CLS_ID, 10, 11, END_ID, CLS_ID, 12, END_ID, PAD_ID]])
    segments = jnp.array([[1, 1, 1, 1, 2, 2, 2, 0]])
    targets, weights = next_word_targets(tokens, segments, segments > 0)
    assert targets[0, :6].tolist() == [10, 11, END_ID, CLS_ID, 12, END_ID]
    # [END] predicts nothing (the next text is another one); padding predicts nothing.
    assert weights[0].tolist() == [1, 1, 1, 0, 1, 1, 0, 0]
    learn = jnp.array([[0, 0, 1, 1, 0, 0, 1, 0]])  # e.g. an answer's tokens only
    assert next_word_targets(tokens, segments, learn)[1][0].tolist() == [0, 1, 1, 0, 0, 1, 0, 0]


def test_the_decoder_never_looks_ahead(small):
    model, _ = small
    tokens = jnp.array([[CLS_ID, 10, 11, 12, 13, END_ID]])
    changed = tokens.at[0, 4].set(20)
    before, after = model(tokens), model(changed)
    np.testing.assert_allclose(before[0, :4], after[0, :4], atol=1e-6)  # positions before the change
    assert not np.allclose(before[0, 4], after[0, 4])


def test_packed_texts_do_not_see_each_other(small):
    model, _ = small
    one = jnp.array([[CLS_ID, 10, 11, END_ID, CLS_ID, 12, 13, END_ID]])
    other = one.at[0, 1].set(30)
    segments = jnp.array([[1, 1, 1, 1, 2, 2, 2, 2]])
    np.testing.assert_allclose(model(one, segments)[0, 4:], model(other, segments)[0, 4:], atol=1e-6)


def test_cached_decoding_writes_what_recomputing_everything_writes(small):
    model, tokenizer = small
    cached = generate(model, tokenizer, PROMPTS, max_new_tokens=12)
    recomputed = generate(model, tokenizer, PROMPTS, max_new_tokens=12, use_cache=False)
    assert [g.tokens for g in cached] == [g.tokens for g in recomputed]
    assert all(len(g.tokens) == 12 or g.ended for g in cached)


def test_top_k_one_and_temperature_zero_are_greedy(small):
    model, tokenizer = small
    greedy = generate(model, tokenizer, PROMPTS, max_new_tokens=8)
    top_1 = generate(model, tokenizer, PROMPTS, max_new_tokens=8, sampling=Sampling(temperature=1.0, top_k=1), seed=3)
    tiny_p = generate(model, tokenizer, PROMPTS, max_new_tokens=8, sampling=Sampling(temperature=1.0, top_p=1e-6), seed=4)
    assert [g.tokens for g in top_1] == [g.tokens for g in greedy] == [g.tokens for g in tiny_p]


def test_the_same_key_gives_the_same_sample_and_another_key_another(small):
    model, tokenizer = small
    draw = lambda seed: [g.tokens for g in generate(model, tokenizer, PROMPTS * 4, max_new_tokens=10, sampling=Sampling(1.0), seed=seed)]  # noqa: E731
    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_sampling_never_writes_special_tokens_but_the_end():
    logits = jnp.zeros((2000, 12)).at[:, :7].set(50.0)  # the special tokens score highest
    tokens = sample_next(jax.random.key(0), logits, 1.0, 0, 1.0)
    assert set(np.unique(tokens).tolist()) <= {END_ID, *range(7, 12)}


def test_top_k_keeps_only_the_k_best():
    logits = jnp.tile(jnp.arange(12.0) / 4, (3000, 1))
    tokens = np.asarray(sample_next(jax.random.key(1), logits, 1.0, 2, 1.0))
    assert set(np.unique(tokens).tolist()) == {10, 11}


def test_no_recompilation_across_prompt_lengths_settings_and_calls(small):
    model, tokenizer = small
    generate(model, tokenizer, PROMPTS, max_new_tokens=4)
    with count_compilations() as again:
        generate(model, tokenizer, ["a", "the sky is blue and", "x", "every day"], max_new_tokens=9, sampling=Sampling(0.7, 5, 0.9), seed=5)
        generate(model, tokenizer, ["Today Maria went to the"] * 3, max_new_tokens=2, sampling=Sampling(1.5))
    assert again.count == 0


def test_large_greedy_batches_share_one_program_and_write_what_each_prompt_alone_writes(small):
    from learnjax.models.generation import GREEDY_CHUNK

    model, tokenizer = small
    prompts = [" ".join(text.split()[:4]) for text in corpus.build_corpus(3 * GREEDY_CHUNK)]
    generate(model, tokenizer, prompts[: GREEDY_CHUNK + 1], max_new_tokens=3)
    with count_compilations() as again:
        many = generate(model, tokenizer, prompts, max_new_tokens=3)
    assert again.count == 0, "a batch of any size above a chunk runs the chunk's program"
    for i in (0, GREEDY_CHUNK - 1, GREEDY_CHUNK, len(prompts) - 1):
        assert generate(model, tokenizer, [prompts[i]], max_new_tokens=3)[0] == many[i], i


@pytest.mark.parametrize("prompts, new, message", [
    ([""], 4, "is empty"),
    (["   "], 4, "is empty"),
    (["word " * 30], 4, "exceeds the model's 32-token context"),
    (["the sky"], 0, "max_new_tokens must be between 1"),
    (["the sky"], 31, "max_new_tokens must be between 1"),
    (["the sky is blue"], 29, "exceeds the model's 32-token context"),
])
def test_bad_prompts_are_named(small, prompts, new, message):
    model, tokenizer = small
    with pytest.raises(ValueError, match=message):
        generate(model, tokenizer, prompts, max_new_tokens=new)


@pytest.mark.parametrize("settings, message", [
    ({"temperature": -0.5}, "temperature must be 0"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"top_k": -1}, "top_k must be 0"),
])
def test_bad_sampling_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        Sampling(**settings)


def test_prompts_fill_rows_of_the_context():
    tokenizer = Tokenizer.from_texts(["the sky is blue"])
    rows, lengths = prompt_rows(encode_prompts(tokenizer, ["the sky", "blue"]), 8, 3)
    assert rows.shape == (2, 8) and lengths.tolist() == [3, 2] and rows[0, 0] == CLS_ID and rows[1, 2] == PAD_ID


# What the generative foundation model learned (one cached experiment).

@pytest.fixture(scope="module")
def measured():
    return experiments.generation()


def test_cafe_continues_with_coffee(measured):
    assert measured["cafe"].split()[0].strip(".") == "coffee"


def test_held_out_next_words(measured):
    result = measured["next_word"]
    assert result["n"] >= 20
    assert result["accuracy"] >= 0.8, result


def test_held_out_prompts_are_not_in_the_corpus():
    texts = set(corpus.build_corpus())
    probes = corpus.next_word_probes()
    assert len(probes) >= 20
    assert not any(t.startswith(p.prompt + " " + p.answer) for p in probes for t in texts)


def test_transformer_beats_the_trigram_on_held_out_text(measured):
    assert measured["perplexity"]["transformer"] < measured["perplexity"]["trigram"]


def test_greedy_decoding_states_facts_and_heat_loses_them(measured):
    shares = measured["facts"]["shares"]
    assert measured["facts"]["continuations"] >= 200
    assert shares["0.0"]["true"] >= 0.9
    true = [shares[str(t)]["true"] for t in experiments.GENERATION_TEMPERATURES]
    assert true == sorted(true, reverse=True)  # hotter never states more truths
    assert shares["2.0"]["true"] < shares["0.0"]["true"] - 0.2


def test_temperature_brings_variety(measured):
    variety = {t: v["distinct"] for t, v in measured["variety"].items()}
    assert variety["0.0"] == 1 / 16  # greedy: the same text every time
    assert variety["1.0"] > 0.3


def test_trigram_probabilities_sum_to_one_in_any_context():
    from learnjax.models.ngram import KneserNeyTrigram

    texts = corpus.build_corpus(2000)
    tokenizer = Tokenizer.from_texts(texts)
    model = KneserNeyTrigram.fit(tokenizer, texts)
    V = len(tokenizer)
    the, cafe = tokenizer.ids["the"], tokenizer.ids["café"]
    for u, v in [(CLS_ID, CLS_ID), (the, cafe), (cafe, the), (V - 1, V - 2)]:  # seen, seen, rare, never seen
        p = model.probabilities(np.full(V, u), np.full(V, v), np.arange(V))
        assert (p > 0).all()
        assert abs(p.sum() - 1) < 1e-9
    assert model.perplexity(tokenizer, texts[:200]) < model.perplexity(tokenizer, ["Grüße aus Köln."] * 10)
