"""Exporting a saved model for a web page: the binary holds exactly the model's parameters."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from learnjax.models.transformer import EncoderClassifier, TransformerConfig, MaskedLanguageModel, NextWordModel, Transformer
from learnjax.storage import checkpoints
from learnjax.storage.export import ExportError, export_directory, read_export
from learnjax.text.subword import SubwordTokenizer
from learnjax.text.tokenizer import CLS_ID, SPECIAL_TOKENS, Tokenizer

TEXTS = ["today i went to the café and drank coffee .", "the nurse checks the chart ."]


def _saved(tmp_path, kind, tokenizer=None, metadata=None):
    tokenizer = tokenizer or Tokenizer.from_texts(TEXTS)
    config = TransformerConfig(vocab_size=len(tokenizer), max_len=8, d_model=8, n_layers=2, n_heads=2, d_ff=16)
    rngs = nnx.Rngs(3)
    model = {
        "masked_lm": lambda: MaskedLanguageModel(config, rngs=rngs),
        "next_word_lm": lambda: NextWordModel(config, rngs=rngs),
        "classifier": lambda: EncoderClassifier(Transformer(config, rngs=rngs), 3, rngs=rngs),
    }[kind]()
    directory = checkpoints.save(tmp_path / kind, model, tokenizer, kind, metadata)
    return model, tokenizer, directory


def _by_path(model) -> dict[str, np.ndarray]:
    """The model's parameters by dotted path, read with jax's own tree paths."""
    leaves = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(model)))[0]
    return {".".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf) for path, leaf in leaves}


@pytest.mark.parametrize("kind, metadata", [("masked_lm", None), ("next_word_lm", None),
                                            ("classifier", {"labels": ["ham", "spam", "other"]})])
def test_the_binary_read_back_with_numpy_is_the_model(tmp_path, kind, metadata):
    model, tokenizer, directory = _saved(tmp_path, kind, metadata=metadata)
    path = export_directory(directory, tmp_path / "web")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    weights = (tmp_path / "web" / manifest["weights"]["file"]).read_bytes()
    expected = _by_path(model)
    assert set(manifest["tensors"]) == set(expected)
    assert len(weights) == 4 * sum(a.size for a in expected.values()) == manifest["weights"]["bytes"]
    for name, array in expected.items():
        entry = manifest["tensors"][name]
        assert entry["offset"] % 4 == 0
        found = np.frombuffer(weights, "<f4", count=array.size, offset=entry["offset"]).reshape(entry["shape"])
        np.testing.assert_array_equal(found, array, err_msg=name)
    assert manifest["kind"] == kind and manifest["config"] == model.config.to_dict()
    assert manifest["tokenizer"] == {"kind": "word", "vocab": tokenizer.vocab}
    assert manifest["special_tokens"] == {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    assert manifest["labels"] == (metadata or {}).get("labels")
    assert manifest["layer_norm_epsilon"] == 1e-6 and manifest["gelu"] == "tanh"
    read_manifest, arrays = read_export(path)
    assert read_manifest == manifest and all(np.array_equal(arrays[n], a) for n, a in expected.items())


def test_a_subword_model_exports_its_pieces(tmp_path):
    tokenizer = SubwordTokenizer.train(TEXTS * 10, vocab_size=120)
    _, _, directory = _saved(tmp_path, "masked_lm", tokenizer)
    manifest, _ = read_export(export_directory(directory, tmp_path / "web", name="pieces"))
    assert manifest["tokenizer"] == {"kind": "subword", "vocab": tokenizer.vocab}
    assert (tmp_path / "web" / "pieces.bin").exists()


def _one_line_error(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_inputs_get_one_line_errors_naming_them(tmp_path):
    with pytest.raises(checkpoints.CheckpointError) as error:
        export_directory(tmp_path / "nowhere", tmp_path / "web")
    assert "nowhere" in _one_line_error(error)
    _, _, directory = _saved(tmp_path, "masked_lm")
    (tmp_path / "file.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ExportError) as error:
        export_directory(directory, tmp_path / "file.txt")
    assert "file.txt" in _one_line_error(error) and (tmp_path / "file.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(ExportError) as error:
        export_directory(directory, tmp_path / "web", name="../escape")
    assert "../escape" in _one_line_error(error)
    path = export_directory(directory, tmp_path / "web")
    weights = path.with_suffix(".bin")
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ExportError) as error:
        read_export(path)
    assert "checksum" in _one_line_error(error)


def test_a_classifier_without_labels_is_refused(tmp_path):
    _, _, directory = _saved(tmp_path, "classifier", metadata={"labels": ["only"]})
    with pytest.raises(ExportError) as error:
        export_directory(directory, tmp_path / "web")
    assert "only" in _one_line_error(error)


@pytest.mark.parametrize("kind, metadata", [("masked_lm", None), ("classifier", {"labels": ["ham", "spam", "other"]})])
def test_an_export_read_back_is_the_same_model_for_jax(tmp_path, kind, metadata):
    from learnjax.storage.export import model_from_export

    model, tokenizer, directory = _saved(tmp_path, kind, metadata=metadata)
    rebuilt = model_from_export(*read_export(export_directory(directory, tmp_path / "web")))
    tokens = np.array([[CLS_ID, *tokenizer.encode(TEXTS[0])][:8]])
    np.testing.assert_array_equal(np.asarray(rebuilt(tokens)), np.asarray(model(tokens)))
