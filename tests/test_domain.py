"""Domain specialization: continued pre-training of a model on a domain's text,
with new words added after the old ones (their ids kept), or read as pieces."""

import json

import numpy as np
import pytest
from flax import nnx

from learnjax.cli import main
from learnjax.data.clinic import TREATMENTS, clinic_cloze, clinic_notes
from learnjax.experiments.domain_specialization import domain_specialization, domain_table
from learnjax.training.foundation import Foundation
from learnjax.training.pretraining import pretrain, with_vocabulary
from learnjax.training.recipe import PretrainRecipe

GENERAL = ["the doctor works at the hospital.", "the nurse drives to the hospital.", "my aunt drinks coffee at the café."] * 20
SMALL = dict(max_len=16, steps=10, batch_size=8, d_model=16, n_layers=1, d_ff=32)


@pytest.fixture(scope="module")
def general(tmp_path_factory):
    root = tmp_path_factory.mktemp("domain")
    foundation = pretrain(PretrainRecipe(**SMALL), GENERAL)
    foundation.save(root / "general")
    (root / "clinic").mkdir()
    (root / "clinic" / "notes.txt").write_text("\n".join(clinic_notes(200)), encoding="utf-8")
    return root, foundation


def test_clinic_notes_and_cloze_sentences_agree_and_never_overlap():
    notes, items = clinic_notes(500), clinic_cloze()
    assert notes == clinic_notes(500) and len(items) == 4 * len(TREATMENTS)
    assert all(any(f" {c} " in f" {i.text.lower().replace(',', ' ')} " and TREATMENTS[c] == i.answer for c in TREATMENTS) for i in items)
    assert not {i.text.replace("[MASK]", i.answer) for i in items} & set(notes)


def test_continued_pre_training_adds_new_words_after_the_old_ones(general, capsys):
    root, foundation = general
    assert main(["pretrain", "--init", str(root / "general"), "--corpus", str(root / "clinic"), "--steps", "5", "--batch-size", "8",
                 "--json", "--out", str(root / "clinic-model")]) == 0
    report = json.loads(capsys.readouterr().out)
    specialized = Foundation.load(root / "clinic-model")
    old = foundation.tokenizer.vocab
    assert specialized.tokenizer.vocab[: len(old)] == old  # every word keeps its id
    assert set(TREATMENTS.values()) <= set(specialized.tokenizer.vocab[len(old):])
    assert report["new_words"] == len(specialized.tokenizer) - len(old) and report["init"] == str(root / "general")
    assert specialized.model.config.d_model == foundation.model.config.d_model and specialized.recipe.steps == 5


def test_new_rows_leave_the_old_ones_as_they_were_and_differ_from_each_other(general):
    _, foundation = general
    grown = with_vocabulary(foundation.model, len(foundation.tokenizer) + 3)
    old, new = foundation.model.encoder.token_embed.embedding[...], grown.encoder.token_embed.embedding[...]
    assert np.array_equal(new[: len(old)], old) and len({tuple(np.asarray(row).round(5)) for row in new[len(old):]}) == 3
    assert np.array_equal(grown.bias[...][: len(old)], foundation.model.bias[...]) and not grown.bias[...][len(old):].any()


def test_with_lora_only_the_adapters_and_the_embeddings_learn(general):
    _, foundation = general
    notes = clinic_notes(200)
    specialized = pretrain(foundation.continuing_recipe(steps=5, batch_size=8), notes, init=foundation, lora_rank=4)
    before, after = nnx.state(foundation.model), nnx.state(specialized.model)
    assert np.array_equal(before["encoder"]["ln_final"]["scale"][...], after["encoder"]["ln_final"]["scale"][...])  # frozen
    assert not np.array_equal(before["encoder"]["blocks"][0]["ff1"]["kernel"][...], after["encoder"]["blocks"][0]["ff1"]["kernel"][...])  # adapter merged in
    learned = after["encoder"]["token_embed"]["embedding"][...][: len(foundation.tokenizer)]
    assert not np.array_equal(before["encoder"]["token_embed"]["embedding"][...], learned)
    assert type(specialized.model.encoder.blocks[0].ff1) is nnx.Linear  # the adapters merged: a plain model again


def test_a_subword_model_reads_new_words_as_pieces(tmp_path):
    recipe = PretrainRecipe(tokenizer="subword", vocab_size=120, **SMALL)
    foundation = pretrain(recipe, GENERAL)
    specialized = pretrain(foundation.continuing_recipe(steps=3), clinic_notes(100), init=foundation)
    assert specialized.tokenizer == foundation.tokenizer
    assert len(specialized.tokenizer.tokens("antihistamines")) > 1


@pytest.mark.slow
def test_the_domain_experiment_measures_before_and_after():
    result = domain_specialization()  # the Fine-tuning page's run, cached
    assert [row["model"] for row in result["rows"]][0] == "general model (before)" and len(result["rows"]) == 4
    assert result["rows"][0]["domain_top1"] == 0 and result["domain_answers_known_before"] == 0  # the general model lacks the words
    assert all(0 <= row[key] <= 1 for row in result["rows"] for key in ("domain_top1", "domain_top5", "general_top1", "general_top5"))
    assert set(TREATMENTS.values()) <= set(result["new_words"])
    assert domain_table(result).count("\n") == 5


@pytest.mark.slow
def test_specializing_learns_the_clinic_and_general_text_keeps_what_the_model_knew():
    """What the Fine-tuning page reports: every specialized model learns the
    clinic's rule, reading the notes alone forgets the general cloze, and mixing
    general text back in keeps much of it."""
    before, notes_only, mixed, lora = domain_specialization()["rows"]
    for row in (notes_only, mixed, lora):
        assert row["domain_top1"] >= 0.25 and row["domain_top5"] >= 0.5, row
    assert notes_only["general_top1"] < before["general_top1"] - 0.3
    assert mixed["general_top1"] > notes_only["general_top1"] + 0.3
