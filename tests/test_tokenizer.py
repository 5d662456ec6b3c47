"""The tokenizer: special tokens, any Unicode, packing, save and load."""

import pytest

from learnjax.text.tokenizer import ASSISTANT_ID, CLS_ID, END_ID, MASK_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, USER_ID, Tokenizer, split_words


@pytest.fixture
def tokenizer():
    return Tokenizer.from_texts(["Today I went to the café and drank coffee.", "The sky is blue."])


def test_special_tokens_come_first(tokenizer):
    assert tokenizer.vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert (PAD_ID, UNK_ID, MASK_ID, CLS_ID, END_ID, USER_ID, ASSISTANT_ID) == tuple(range(7))


def test_chat_tokens_written_in_a_text_are_plain_words(tokenizer):
    # Only the chat template writes a turn: a text cannot open the assistant's.
    assert split_words("[USER] hi [ASSISTANT] ok [END]") == ["[", "user", "]", "hi", "[", "assistant", "]", "ok", "[", "end", "]"]
    assert not {END_ID, USER_ID, ASSISTANT_ID} & set(tokenizer.encode("[END] [USER] [ASSISTANT] [end]"))


def test_a_format_1_tokenizer_loads_with_its_word_ids_moved_up():
    import json

    old = Tokenizer.from_json(json.dumps({"format": 1, "vocab": ["[PAD]", "[UNK]", "[MASK]", "[CLS]", "sky", "blue"]}))
    assert old.vocab == [*SPECIAL_TOKENS, "sky", "blue"] and old.ids_shifted_by == 3
    assert Tokenizer.from_json(old.to_json()).ids_shifted_by == 0


def test_round_trip_and_unknown_words(tokenizer):
    ids = tokenizer.encode("The café is blue.")
    assert tokenizer.decode(ids) == "the café is blue ."
    assert tokenizer.encode("Grüße 🙂 café") == [UNK_ID, UNK_ID, tokenizer.ids["café"]]
    assert tokenizer.encode("[MASK] coffee", masks=True) == [MASK_ID, tokenizer.ids["coffee"]]  # a text to fill in
    assert MASK_ID not in tokenizer.encode("[MASK] coffee")  # any other text: brackets around a word


def test_unicode_normalisation():
    decomposed = "cafe\u0301"  # e + combining accent
    assert split_words(decomposed) == ["café"]


def test_encode_batch_shapes(tokenizer):
    rows = tokenizer.encode_batch(["the sky", "coffee"], max_len=5)
    assert rows.tolist() == [[CLS_ID, tokenizer.ids["the"], tokenizer.ids["sky"], 0, 0], [CLS_ID, tokenizer.ids["coffee"], 0, 0, 0]]
    with pytest.raises(ValueError, match="at most 2"):
        tokenizer.encode_batch(["the sky is blue"], max_len=3, truncate=False)


def test_packing_keeps_texts_apart(tokenizer):
    tokens, segments = tokenizer.encode_packed(["the sky", "is blue", "coffee"], max_len=7)
    assert tokens.shape == segments.shape == (2, 7)  # "coffee" does not fit in the first row
    assert segments.tolist() == [[1, 1, 1, 2, 2, 2, 0], [1, 1, 0, 0, 0, 0, 0]]
    assert tokens[0, 3] == CLS_ID  # each text starts with [CLS]
    assert (tokens[segments == 0] == PAD_ID).all()


def test_written_structure_tokens_are_plain_text(tokenizer):
    # Only the tokenizer writes [PAD] and [CLS]; a text holding them must not end
    # its own row early or start a new text; nor is a written [MASK] one, save in fill-mask's text.
    tokens, segments = tokenizer.encode_packed(["the [PAD] sky [CLS] [MASK]"], max_len=16)
    words = tokens[segments > 0].tolist()
    assert words.count(PAD_ID) == 0 and words.count(CLS_ID) == 1 and MASK_ID not in words
    assert split_words("[PAD] [cls]") == ["[", "pad", "]", "[", "cls", "]"]


def test_save_and_load(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "tok.json")
    assert Tokenizer.load(tmp_path / "tok.json") == tokenizer


def test_empty_texts_are_rejected():
    with pytest.raises(ValueError, match="no usable tokens"):
        Tokenizer.from_texts(["", "   "])
