"""Property-based tests of the tokenizer and of masking."""

import jax
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from learnjax.text.tokenizer import CLS_ID, MASK_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer, split_words
from learnjax.training.masking import mask_tokens

WORDS = ["the", "café", "coffee", "drank", "naïve", "über", "日本", "don't", "well-known", ".", ",", "!", "?", "🙂"]
TOKENIZER = Tokenizer.from_texts([" ".join(WORDS)])


@given(st.lists(st.sampled_from(WORDS), max_size=30))
def test_round_trip_within_the_vocabulary(words):
    text = " ".join(words)
    ids = TOKENIZER.encode(text)
    assert UNK_ID not in ids
    assert TOKENIZER.decode(ids) == text


@given(st.text(max_size=200))
def test_any_unicode_encodes_without_crashing(text):
    ids = TOKENIZER.encode(text)
    assert all(0 <= i < len(TOKENIZER) for i in ids)
    assert len(ids) == len(split_words(text))
    rows = TOKENIZER.encode_batch([text], max_len=16)
    assert rows.shape == (1, 16) and rows[0, 0] == CLS_ID
    tokens, segments = TOKENIZER.encode_packed([text, text], max_len=16)
    assert ((segments == 0) == (tokens == PAD_ID)).all()


@given(st.lists(st.text(max_size=40), max_size=20))
def test_vocabulary_built_from_any_text_is_valid(texts):
    words = [w for t in texts for w in split_words(t) if w not in SPECIAL_TOKENS]
    assume(words)  # a vocabulary of special tokens alone has nothing to check
    tokenizer = Tokenizer.from_texts(texts)
    assert tokenizer.vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert len(set(tokenizer.vocab)) == len(tokenizer.vocab)
    assert all(tokenizer.decode(tokenizer.encode(w)) == w for w in set(words))


# A few shapes (each new shape compiles mask_tokens again); any token values.
token_rows = st.sampled_from([1, 3, 8]).flatmap(
    lambda rows: st.sampled_from([2, 7, 24]).flatmap(
        lambda length: st.lists(st.lists(st.integers(0, 49), min_size=length, max_size=length), min_size=rows, max_size=rows)
    )
)


@settings(max_examples=60, deadline=None)
@given(token_rows, st.floats(0.01, 0.99), st.integers(0, 2**31 - 1))
def test_masking_never_touches_special_tokens_and_scores_only_chosen(rows, rate, seed):
    tokens = np.array(rows, dtype=np.int32)
    inputs, targets, weights = map(np.asarray, mask_tokens(jax.random.key(seed), tokens, 50, rate))
    special = tokens < len(SPECIAL_TOKENS)
    assert not weights[special].any()
    np.testing.assert_array_equal(inputs[special], tokens[special])
    assert ((weights == 1) == (targets != PAD_ID)).all()
    np.testing.assert_array_equal(targets[weights == 1], tokens[weights == 1])
    changed = inputs != tokens
    assert not (changed & (weights == 0)).any()  # only chosen positions are corrupted
    assert set(np.unique(inputs[changed])) <= set(range(len(SPECIAL_TOKENS), 50)) | {MASK_ID}


@settings(max_examples=20, deadline=None)
@given(st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_mask_rate_is_honoured(rate, seed):
    tokens = np.random.default_rng(seed).integers(len(SPECIAL_TOKENS), 50, size=(64, 64)).astype(np.int32)
    _, _, weights = mask_tokens(jax.random.key(seed), tokens, 50, rate)
    observed = float(np.asarray(weights).mean())
    assert abs(observed - rate) < 4 * np.sqrt(rate * (1 - rate) / tokens.size) + 1e-3
