"""The subword tokenizer for the user's own text: pieces of rare words, the
same special tokens, any Unicode, the same vocabulary from the same text, saved
in the model directory; and model directories record which kind they hold."""

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnjax.models.generation import Sampling
from learnjax.storage import checkpoints
from learnjax.text.loading import tokenizer_from_json
from learnjax.text.subword import ALPHABET, SubwordTokenizer
from learnjax.text.tokenizer import CLS_ID, END, END_ID, MASK_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer
from learnjax.training.foundation import Foundation, fill_mask
from learnjax.training.writing import generate_text
from learnjax.training.pretraining import pretrain
from learnjax.training.recipe import PretrainRecipe

WORDS = ("nurse", "doctor", "patient", "checks", "reads", "the", "chart", "ward", "fever", "café", "grüße", "naïve", "straße", "über")


def _texts(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + rng.choice((".", "!", "?")) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer() -> SubwordTokenizer:
    # A rare word, seen once: its pairs of pieces are never merged (min_frequency 2).
    return SubwordTokenizer.train([*_texts(), "the stethoscope."], vocab_size=300)


def test_special_tokens_have_the_word_tokenizers_ids(tokenizer):
    assert tokenizer.vocab[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert [tokenizer.ids[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert len(tokenizer) <= 300 + 2 * len(ALPHABET)  # the characters are kept whole even beyond the size asked for


def test_a_rare_word_is_split_into_pieces_and_read_back_whole(tokenizer):
    pieces = tokenizer.tokens("The stethoscope ward.")
    rare = pieces[1 : pieces.index("ward")]
    assert len(rare) > 1 and not tokenizer.continues_word(rare[0]) and all(tokenizer.continues_word(p) for p in rare[1:])
    assert "".join(p.removeprefix("##") for p in rare) == "stethoscope"
    assert tokenizer.tokens("the nurse checks the chart.") == ["the", "nurse", "checks", "the", "chart", "."]  # frequent words stay whole
    assert tokenizer.decode(tokenizer.encode("The Nurse checks the stethoscope, über-naïve!")) == "the nurse checks the stethoscope, über - naïve!"


def test_masks_in_either_case_are_the_mask_and_structure_tokens_written_in_text_are_not(tokenizer):
    assert tokenizer.encode("the [MASK] and the [mask]", masks=True).count(MASK_ID) == 2  # a text to fill in
    assert MASK_ID not in tokenizer.encode("the [MASK] and the [mask]")  # any other text
    assert tokenizer.encode("[unk]") == tokenizer.encode("[ unk ]")
    ids = tokenizer.encode("the [PAD] [CLS] [END] [USER] [ASSISTANT] ward")
    assert not {PAD_ID, CLS_ID, END_ID, 5, 6} & set(ids)


def test_unseen_characters_are_unknown_and_nothing_crashes(tokenizer):
    assert tokenizer.encode("the 🙂 ward") == [tokenizer.ids["the"], UNK_ID, tokenizer.ids["ward"]]
    assert tokenizer.decode(tokenizer.encode("cafe\u0301")) == "café"  # NFC, as the word tokenizer reads it
    # Every printable ASCII character is in the vocabulary, seen in the texts or not.
    assert UNK_ID not in tokenizer.encode("xyzzy qwerty 1234 $%&")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_any_unicode_encodes_into_valid_ids_and_rows(text):
    tokenizer = _SMALL
    ids = tokenizer.encode(text)
    assert all(0 <= i < len(tokenizer) for i in ids)
    assert tokenizer.encode_batch([text], max_len=8)[0, 0] == CLS_ID
    tokens, segments = tokenizer.encode_packed([text, text], max_len=8)
    assert (segments > 0).sum() == 2 * (len(ids) + 1)  # nothing cut
    assert isinstance(tokenizer.decode(ids), str)


_SMALL = SubwordTokenizer.train(_texts(100), vocab_size=150)


def test_the_same_texts_always_give_the_same_vocabulary():
    # The library alone numbers its `##` pieces in hash-map order, which changes
    # which merges win a tie from run to run (tokenizers#1794).
    texts = _texts(300, seed=1)
    first = SubwordTokenizer.train(texts, vocab_size=140)
    assert all(SubwordTokenizer.train(texts, vocab_size=140).vocab == first.vocab for _ in range(5))


def test_a_stream_is_read_for_training_as_a_list_is():
    texts = _texts(200)
    assert SubwordTokenizer.train(iter(texts), vocab_size=150) == SubwordTokenizer.train(texts, vocab_size=150)
    with pytest.raises(ValueError, match="no usable tokens"):
        SubwordTokenizer.train(["", "   "])
    with pytest.raises(ValueError, match="above the 7 special tokens"):
        SubwordTokenizer.train(_texts(10), vocab_size=7)


def test_saved_and_loaded_by_kind(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "tok.json")
    assert SubwordTokenizer.load(tmp_path / "tok.json") == tokenizer
    assert tokenizer_from_json(tokenizer.to_json()) == tokenizer
    with pytest.raises(ValueError, match="it is a 'subword' tokenizer"):
        Tokenizer.from_json(tokenizer.to_json())


@pytest.fixture(scope="module")
def subword_model(tmp_path_factory):
    texts = [*_texts(300), *["the nurse checks the stethoscope."] * 3]
    recipe = PretrainRecipe(tokenizer="subword", vocab_size=200, steps=30, batch_size=8, d_model=16, n_layers=1, d_ff=32)
    foundation = pretrain(recipe, texts)
    path = tmp_path_factory.mktemp("subword") / "model"
    foundation.save(path)
    return foundation, path


def test_a_subword_model_saves_its_tokenizer_and_kind_and_loads_them(subword_model):
    foundation, path = subword_model
    manifest = json.loads((path / checkpoints.MANIFEST).read_text())
    assert manifest["tokenizer_kind"] == "subword" and manifest["vocab_size"] == len(foundation.tokenizer)
    loaded = Foundation.load(path)
    assert loaded.tokenizer == foundation.tokenizer and loaded.recipe.tokenizer == "subword"
    assert [p.word for p in fill_mask(loaded, "the nurse [MASK] the chart.")] == [p.word for p in fill_mask(foundation, "the nurse [MASK] the chart.")]


def test_fill_mask_says_which_predictions_are_pieces_of_words(subword_model):
    foundation, _ = subword_model
    predictions = fill_mask(foundation, "the [MASK] checks the chart.", top_k=len(foundation.tokenizer))
    assert {p.piece for p in predictions} == {True, False}
    assert all(p.piece == p.word.startswith("##") for p in predictions)


def test_a_model_directory_whose_tokenizer_is_not_the_recorded_kind_is_refused(subword_model, tmp_path):
    _, path = subword_model
    manifest = json.loads((path / checkpoints.MANIFEST).read_text())
    manifest["tokenizer_kind"] = "word"
    (tmp_path / "model").mkdir()
    for file in path.iterdir():
        (tmp_path / "model" / file.name).write_bytes(file.read_bytes())
    (tmp_path / "model" / checkpoints.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(checkpoints.CheckpointError, match="is a subword tokenizer, but the model was saved with a word tokenizer"):
        Foundation.load(tmp_path / "model")


def test_a_word_level_model_directory_without_a_recorded_kind_still_loads(tmp_path):
    foundation = pretrain(PretrainRecipe(steps=2, batch_size=4, d_model=16, n_layers=1, d_ff=32), _texts(40))
    foundation.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / checkpoints.MANIFEST).read_text())
    assert manifest.pop("tokenizer_kind") == "word"
    (tmp_path / "model" / checkpoints.MANIFEST).write_text(json.dumps(manifest))  # as saved before there were two kinds
    loaded = Foundation.load(tmp_path / "model")
    assert isinstance(loaded.tokenizer, Tokenizer) and loaded.tokenizer == foundation.tokenizer
    assert np.array_equal(loaded.model.encoder.token_embed.embedding[...], foundation.model.encoder.token_embed.embedding[...])


def test_a_subword_model_that_writes_joins_its_pieces_into_words():
    recipe = PretrainRecipe(objective="next-word", tokenizer="subword", vocab_size=200, steps=30, batch_size=8, d_model=16, n_layers=1, d_ff=32)
    foundation = pretrain(recipe, _texts(300))
    generated = generate_text(foundation, ["the nurse"], max_new_tokens=6, sampling=Sampling(temperature=1.0), seed=3)[0]
    ids = [foundation.tokenizer.ids[t] for t in generated.tokens if t != END]
    assert generated.text == foundation.tokenizer.decode(ids) and "##" not in generated.text
