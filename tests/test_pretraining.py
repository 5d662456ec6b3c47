"""Pre-training: the foundation model learns its world and its grammar, from unlabeled text."""

import jax
import numpy as np
import pytest
from flax import nnx

from learnjax import experiments, fill_mask, foundation_model
from learnjax.data import corpus, questions, world
from learnjax.evaluation.language_model import cloze_accuracy, grammar_accuracy, masked_token_scores
from learnjax.models.transformer import MaskedLanguageModel
from learnjax.training.foundation import Foundation, fill_masks
from learnjax.training.recipe import NEXT_WORD_RECIPE, PretrainRecipe


@pytest.fixture(scope="module")
def foundation():
    return foundation_model()


@pytest.fixture(scope="module")
def texts():
    return corpus.build_corpus()


def test_cafe_sentence_ranks_coffee_first(foundation):
    predictions = fill_mask(foundation, "Today I went to the café and drank [MASK].", top_k=5)
    assert predictions[0].word == "coffee"
    assert predictions[0].probability > 0.5


def test_cafe_runners_up_are_drinks(foundation):
    """The pre-training page names the first three words: all three are drinks."""
    drinks = {a.thing for a in world.ACTIVITIES if a.verb == world.DRINK}
    predictions = fill_mask(foundation, "Today I went to the café and drank [MASK].", top_k=3)
    assert {p.word for p in predictions} <= drinks, predictions


def test_cloze_sentences_are_held_out(texts):
    items = corpus.cloze_sentences()
    assert len(items) >= 20
    seen = set(texts)
    for item in items:
        assert item.text.replace("[MASK]", item.answer) not in seen, item.text


def test_faq_text_replaces_texts_of_its_length_about_train_entities_only(texts):
    mixed = questions.with_faq(texts, 0.1)
    assert corpus.corpus_statistics(mixed)["texts"] == len(texts)
    assert corpus.corpus_statistics(mixed)["tokens"] == corpus.corpus_statistics(texts)["tokens"]
    original = set(texts)
    faqs = [t for t in mixed if t not in original]
    assert len(faqs) == round(0.1 * len(texts))
    assert set(faqs) <= set(questions.faq_texts(questions.facts_of("train")))


def test_a_faq_share_the_corpus_has_no_room_for_is_refused():
    with pytest.raises(ValueError, match=r"faq_share=0.5 replaces 5 texts, but only 0 have the length of an FAQ text"):
        questions.with_faq(["Hello there."] * 10, 0.5)


def test_held_out_cloze_accuracy(foundation):
    score = cloze_accuracy(foundation)
    assert score["top1"] >= 0.80, score
    assert score["top5"] >= 0.90, score


def _untrained(foundation, seed: int) -> Foundation:
    return Foundation(MaskedLanguageModel(foundation.model.config, rngs=nnx.Rngs(seed)), foundation.tokenizer, foundation.history)


def test_pretraining_builds_grammar(foundation, texts):
    """Far beyond chance: at least 30 points above the best of ten untrained models
    of the same shape (each scores whatever its random weights happen to favour),
    and with present forms that agree, not past forms that fit any subject."""
    probes = corpus.grammar_probes(texts)
    assert len(probes) >= 20 and not {p.text for p in probes} & set(texts)
    untrained = [grammar_accuracy(_untrained(foundation, seed), probes)["accuracy"] for seed in range(10)]
    threshold = max(untrained) + 0.30
    assert grammar_accuracy(foundation, probes)["accuracy"] >= threshold, untrained
    present = {a.verb.third for a in world.ACTIVITIES} | {a.verb.base for a in world.ACTIVITIES}
    agreeing = [p.accepted & present for p in probes]  # the present forms that agree with each probe's subject
    answers = [row[0].word for row in fill_masks(foundation, [p.text for p in probes], top_k=1)]
    assert np.mean([answer in agree for answer, agree in zip(answers, agreeing)]) >= threshold, answers


@pytest.fixture(scope="module")
def curve():
    return experiments.scaling_curve()


@pytest.mark.slow
def test_accuracy_rises_steeply_with_the_first_thousand_texts_then_levels_off(curve):
    """The self-supervised learning page: from 200 to 1,000 texts held-out accuracy
    rises by at least 5 points and the held-out loss falls by at least a tenth; from
    1,000 texts on, every point lies within 3 points of the 1,000-text accuracy."""
    assert [row["n_texts"] for row in curve] == sorted(row["n_texts"] for row in curve)
    assert curve[1]["n_texts"] == 1_000
    accuracy = [row["held_out_accuracy"] for row in curve]
    loss = [row["held_out_loss"] for row in curve]
    assert accuracy[1] >= accuracy[0] + 0.05, accuracy
    assert loss[1] <= 0.9 * loss[0], loss
    assert all(abs(a - accuracy[1]) <= 0.03 for a in accuracy[2:]), accuracy


@pytest.mark.slow
def test_the_smallest_corpus_is_memorised(curve):
    smallest = curve[0]
    assert smallest["final_train_loss"] < smallest["held_out_loss"] / 2, smallest


@pytest.mark.slow
def test_more_steps_make_use_of_more_text(curve, foundation):
    """The foundation model reads the scaling curve's largest corpus for more steps:
    it recovers at least 5 points more of the same held-out words."""
    largest = curve[-1]
    assert foundation.recipe.n_texts == largest["n_texts"] and foundation.recipe.steps > experiments.SCALING_STEPS
    scores = masked_token_scores(foundation, experiments.held_out_texts(), mask_rate=0.15)
    assert scores["accuracy"] >= largest["held_out_accuracy"] + 0.05, (scores, largest)


def test_the_recipes_are_the_pages():
    """The pages name these settings in words: rows of 32 tokens, a quarter of the
    words hidden, and a writer that differs from the reader in its objective only."""
    reader = PretrainRecipe()
    assert reader.max_len == 32 and reader.mask_rate == 0.25
    assert NEXT_WORD_RECIPE.replace(objective=reader.objective) == reader


def test_pretraining_loss_falls(foundation):
    loss = foundation.history.loss
    assert np.mean(loss[-100:]) < np.mean(loss[:10]) / 5


@pytest.mark.parametrize("objective", ["masked", "next-word"])
def test_the_loss_falls_quickly_then_keeps_decreasing_slowly(objective):
    """The pre-training page's loss curves, of the model that reads and of the one that writes."""
    loss = np.array(foundation_model(PretrainRecipe(objective=objective)).history.loss)
    half = len(loss) // 2
    start, early, middle, end = loss[:10].mean(), loss[100:200].mean(), loss[half - 100 : half].mean(), loss[-100:].mean()
    assert early < start / 2, (start, early)  # quickly
    assert end < middle, (middle, end)  # keeps decreasing
    assert middle - end < (start - early) / 10, (start, early, middle, end)  # slowly


def test_fill_masks_matches_one_by_one(foundation):
    texts = ["The sky is [MASK].", "After monday comes [MASK]."]
    batched = fill_masks(foundation, texts, top_k=3)
    single = [fill_mask(foundation, t, top_k=3) for t in texts]
    # Same words; probabilities equal up to float rounding (batch shapes differ).
    assert [[p.word for p in row] for row in batched] == [[p.word for p in row] for row in single]
    np.testing.assert_allclose([[p.probability for p in row] for row in batched], [[p.probability for p in row] for row in single], rtol=1e-5)


def test_save_and_load_give_identical_parameters_and_predictions(foundation, tmp_path):
    foundation.save(tmp_path / "model")
    loaded = Foundation.load(tmp_path / "model")
    original = jax.tree.leaves(nnx.state(foundation.model))
    restored = jax.tree.leaves(nnx.state(loaded.model))
    assert len(original) == len(restored)
    for a, b in zip(original, restored):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.tokenizer == foundation.tokenizer
    assert loaded.history.loss == foundation.history.loss
    text = "Every day the baker drives to the [MASK]."
    assert fill_mask(loaded, text) == fill_mask(foundation, text)


def test_the_masked_loop_runs_the_fused_step_once_per_batch():
    """`train_masked_prediction` runs up to STEPS_PER_CALL steps per compiled call; a run
    whose length is not a multiple of it must end where calling
    `fused_masked_prediction_step` once per batch ends, loss for loss."""
    import jax
    import numpy as np
    import optax
    from flax import nnx

    from learnjax.data import corpus
    from learnjax.models.transformer import MaskedLanguageModel, TransformerConfig
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.loops import STEPS_PER_CALL, batch_indices, fused_masked_prediction_step, masking_args, train_masked_prediction

    texts = corpus.build_corpus(300)
    tokenizer = Tokenizer.from_texts(texts)
    tokens, segments = tokenizer.encode_packed(texts, 16)
    steps = STEPS_PER_CALL + 3

    def fresh():
        model = MaskedLanguageModel(TransformerConfig(len(tokenizer), 16, 32, 1, 2, 64), rngs=nnx.Rngs(0))
        return model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    model, optimizer = fresh()
    history = train_masked_prediction(model, optimizer, tokens, segments, steps=steps, batch_size=8, seed=5, mask_rate=0.2)
    graphdef, state = nnx.split(fresh())
    key, losses = jax.random.key(5), []
    for step, idx in enumerate(batch_indices(len(tokens), 8, steps, 5)):
        state, loss, _ = fused_masked_prediction_step(state, key, step, tokens[idx], segments[idx], graphdef=graphdef,
                                              **masking_args(len(tokenizer), 16, 0.2))
        losses.append(float(loss))
    assert len(history.loss) == steps and np.allclose(history.loss, losses, rtol=1e-5)
    for ours, theirs in zip(jax.tree.leaves(nnx.state((model, optimizer))), jax.tree.leaves(state)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
