"""Instruction tuning: the data's splits, the chat template and its loss mask, LoRA,
the measured claims of knowing versus saying, and the command line."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from cli_process import run_cli as _cli
from learnjax import experiments
from learnjax.data import corpus, questions
from learnjax.models.lora import add_lora, load_adapter, merge_lora, save_adapter, trainable_share
from learnjax.models.transformer import NextWordModel, TransformerConfig
from learnjax.text.tokenizer import ASSISTANT_ID, CLS_ID, END_ID, USER_ID, Tokenizer
from learnjax.training.diagnostics import count_compilations
from learnjax.training.instruction_tuning import SFTSettings, build_assistant, instruction_tune

# The data.

def test_entity_splits_are_disjoint_and_cover_every_kind():
    splits = questions.entity_splits()
    assert not splits["train"] & splits["dev"] and not splits["train"] & splits["held_out"] and not splits["dev"] & splits["held_out"]
    for split in ("dev", "held_out"):
        assert {kind for kind, _ in splits[split]} == {kind for kind, _ in splits["train"]}, split


def test_no_fine_tuning_example_and_no_faq_text_is_about_a_held_out_or_dev_entity():
    hidden = {entity for split in ("held_out", "dev") for _, entity in questions.entity_splits()[split]}
    for example in questions.training_examples(1024, seed=0):
        assert example.fact.entity not in hidden
    train_questions = {q.prompt for q in questions.questions("train")}
    faq = [t for t in questions.with_faq(corpus.build_corpus(), 0.1) if t.startswith("Question:")]
    assert faq
    for text in faq:
        question = text.removeprefix("Question: ").split(" Answer: ")[0]
        assert question in train_questions, text


def test_held_out_entities_appear_in_the_pre_training_corpus():
    texts = " ".join(corpus.build_corpus()).lower()
    for _, entity in questions.entity_splits()["held_out"]:
        assert f" {entity}" in texts, entity


def test_the_loss_counts_the_answer_and_its_end_only():
    tokenizer = Tokenizer.from_texts(["where does a nurse work ? at the hospital ."])
    example = questions.Example("where does a nurse work?", "at the hospital.")
    tokens, segments, learn = questions.chat_rows(tokenizer, [example], 16)
    ids = tokens[0].tolist()
    assert ids[:2] == [CLS_ID, USER_ID] and ASSISTANT_ID in ids
    answer_start, end = ids.index(ASSISTANT_ID) + 1, ids.index(END_ID)
    assert learn[0].tolist() == [0] * answer_start + [1] * (end + 1 - answer_start) + [0] * (16 - end - 1)
    assert segments[0].sum() == end + 1


def test_a_too_long_example_is_named():
    tokenizer = Tokenizer.from_texts(["a b c"])
    with pytest.raises(ValueError, match="example 2 has 13 tokens"):
        questions.chat_rows(tokenizer, [questions.Example("a", "b"), questions.Example("a " * 8, "b")], 10)


# LoRA.

@pytest.fixture(scope="module")
def small():
    texts = corpus.build_corpus(300)
    tokenizer = Tokenizer.from_texts(texts)
    return NextWordModel(TransformerConfig(len(tokenizer), 32, 32, 2, 4, 64), rngs=nnx.Rngs(0)), tokenizer


def test_lora_starts_from_the_foundation_and_trains_only_its_adapters(small):
    import optax

    from learnjax.training.steps import next_word_step

    base, _ = small
    model = add_lora(nnx.clone(base), rank=4, alpha=8.0)
    tokens = jax.numpy.asarray(np.random.default_rng(0).integers(7, 40, (8, 32)), jax.numpy.int32)
    np.testing.assert_array_equal(model(tokens), base(tokens))  # B starts at zero
    frozen = lambda m: [np.asarray(x) for x in jax.tree.leaves(nnx.state(m, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))))]  # noqa: E731
    before = frozen(model)
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.LoRAParam)
    assert jax.tree.leaves(nnx.state(optimizer.opt_state)) and all(
        leaf.size <= 64 * 4 * 3 for leaf in jax.tree.leaves(nnx.state(optimizer.opt_state)) if leaf.ndim)  # adapter-sized moments only
    for _ in range(3):
        next_word_step(model, optimizer, tokens, jax.numpy.ones_like(tokens), jax.numpy.ones_like(tokens))
    for a, b in zip(before, frozen(model)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(model(tokens), base(tokens))
    assert trainable_share(model)["share"] < 0.25


def test_an_adapter_saves_alone_loads_onto_its_foundation_and_merges(small, tmp_path):
    base, _ = small
    model = add_lora(nnx.clone(base), rank=4, alpha=8.0)
    adapters = nnx.state(model, nnx.LoRAParam)
    nnx.update(model, jax.tree.map(lambda a: jax.random.normal(jax.random.key(1), a.shape) * 0.05, adapters))  # a trained adapter
    tokens = jax.numpy.asarray(np.random.default_rng(1).integers(7, 40, (4, 32)), jax.numpy.int32)
    path = save_adapter(tmp_path / "adapter", model, 4, 8.0)
    assert path.stat().st_size < 0.5 * sum(x.nbytes for x in jax.tree.leaves(nnx.state(base, nnx.Param)))
    np.testing.assert_allclose(load_adapter(tmp_path / "adapter", base)(tokens), model(tokens), atol=1e-6)
    np.testing.assert_allclose(merge_lora(nnx.clone(model))(tokens), model(tokens), atol=1e-5)
    other = NextWordModel(base.config, rngs=nnx.Rngs(9))
    with pytest.raises(ValueError, match="trained on another foundation"):
        load_adapter(tmp_path / "adapter", other)


def test_instruction_tuning_compiles_its_step_once_for_any_learning_rate():
    from learnjax import foundation_model
    from learnjax.training.recipe import NEXT_WORD_RECIPE

    foundation = foundation_model(NEXT_WORD_RECIPE)
    examples = questions.training_examples(32, seed=0)
    instruction_tune(foundation, examples, settings=SFTSettings(steps=4))
    with count_compilations() as again:
        for rate in (3e-4, 3e-3):
            instruction_tune(foundation, examples, settings=SFTSettings(steps=4, learning_rate=rate))
    assert again.count == 0


def test_scratch_starts_from_random_weights_and_full_from_the_foundation():
    from learnjax import foundation_model
    from learnjax.training.recipe import NEXT_WORD_RECIPE

    foundation = foundation_model(NEXT_WORD_RECIPE)
    full, _ = build_assistant(foundation, "full")
    scratch, _ = build_assistant(foundation, "scratch")
    embedding = foundation.model.decoder.token_embed.embedding[...]
    np.testing.assert_array_equal(full.decoder.token_embed.embedding[...], embedding)
    assert not np.allclose(scratch.decoder.token_embed.embedding[...], embedding)
    full.decoder.token_embed.embedding[...] = 0.0  # a copy: the foundation is untouched
    assert np.abs(np.asarray(foundation.model.decoder.token_embed.embedding[...])).sum() > 0


def test_lora_instruction_tuning_changes_the_adapters_and_nothing_else():
    from learnjax import foundation_model
    from learnjax.training.recipe import NEXT_WORD_RECIPE

    foundation = foundation_model(NEXT_WORD_RECIPE)
    assistant = instruction_tune(foundation, questions.training_examples(32, seed=0), mode="lora",
                                 settings=SFTSettings(steps=4, learning_rate=1e-2))
    frozen = nnx.state(assistant.model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    tuned = dict(jax.tree_util.tree_leaves_with_path(frozen))
    original = dict(jax.tree_util.tree_leaves_with_path(nnx.state(foundation.model, nnx.Param)))
    renamed = {tuple(k for k in path if getattr(k, "key", None) != "base_module"): leaf for path, leaf in tuned.items()}
    assert len(renamed) == len(original)
    for path, leaf in original.items():
        np.testing.assert_array_equal(renamed[path], leaf, err_msg=jax.tree_util.keystr(path))
    tokens = jax.numpy.asarray(np.random.default_rng(0).integers(7, 40, (4, 16)), jax.numpy.int32)
    assert not np.allclose(assistant.model(tokens), foundation.model(tokens))  # the adapters trained (B starts at zero)


# The choice of learning rate.

DEV_RATE, HELD_OUT_RATE = 1e-4, 1e-3  # rates whose "tuning" answers only the dev questions, only the held-out ones


class SplitAnswerer:
    """Answers right exactly the questions of one split, whatever else it is asked."""

    def __init__(self, questions):
        self.right = {q.prompt: q.response for q in questions}

    def answer(self, prompts):
        return [self.right.get(p, "i do not know.") for p in prompts]


def test_sft_chooses_each_cells_rate_on_dev_and_reports_the_held_out_scores(monkeypatch):
    """Dev prefers one rate, the held-out questions the other: every cell must
    follow dev and report that rate's held-out scores, trained on train entities only."""
    trained_on = []

    def tuned(foundation, examples, *, mode, seed, settings):
        trained_on.extend(e.prompt for e in examples)
        return SplitAnswerer(questions.questions("dev" if settings.learning_rate == DEV_RATE else "held_out"))

    monkeypatch.setattr(experiments, "tuned_assistant", tuned)  # the name experiments calls
    rates = {mode: (DEV_RATE, HELD_OUT_RATE) for mode in ("full", "lora", "scratch")}
    rows, chosen = experiments.sft_search({"plain": None, "mixed": None}, (16,), (0, 1), rates, SFTSettings())
    assert {(r["foundation"], r["mode"]) for r in rows} == set(experiments.SFT_CELLS)
    for row in rows:
        assert row["learning_rate"] == DEV_RATE and row["exact"] == row["contains"] == 0.0 and row["exact_by_seed"] == [0.0, 0.0], row
        assert row["dev_exact_by_learning_rate"] == {str(DEV_RATE): 1.0, str(HELD_OUT_RATE): 0.0}, row
    assert set(trained_on) <= {q.prompt for q in questions.questions("train")}


def test_the_research_script_chooses_each_modes_rate_on_dev(monkeypatch, capsys):
    """benchmarks/instruction_tuning_research.py searches rates the same way:
    dev prefers one rate, the held-out questions the other; dev must win."""
    from types import SimpleNamespace

    from benchmarks import instruction_tuning_research as research

    monkeypatch.setattr(research, "instruction_tune", lambda foundation, examples, *, mode, settings, seed:
                        SplitAnswerer(questions.questions("dev" if settings.learning_rate == DEV_RATE else "held_out")))
    args = SimpleNamespace(examples=16, steps=1, seeds=[0, 1], show=0)
    result = research.tune(None, "full", [DEV_RATE, HELD_OUT_RATE], args, questions.questions("dev"), questions.questions("held_out"))
    assert (result["chosen"]["lr"], result["chosen"]["dev"], result["chosen"]["held_out"]) == (DEV_RATE, 1.0, 0.0)
    assert "chosen on dev: lr 1e-04 -> held-out exact 0.00" in capsys.readouterr().out


# The measured claims (one cached experiment).

@pytest.fixture(scope="module")
def measured():
    return experiments.instruction_tuning()


def _cell(measured, foundation, mode, n):
    return next(r for r in measured["rows"] if (r["foundation"], r["mode"], r["n_examples"]) == (foundation, mode, n))


def test_both_foundations_know_the_held_out_facts(measured):
    for name, knows in measured["knows"].items():
        assert knows["known"] >= 0.9, (name, knows)


def test_untuned_foundations_do_not_answer_in_the_chat_template(measured):
    for name, before in measured["untuned"].items():
        assert before["exact"] <= 0.1, (name, before)


def test_sft_from_the_faq_foundation_answers_most_held_out_questions(measured):
    best = max(_cell(measured, "mixed", "full", n)["exact"] for n in measured["sizes"] if n <= 256)
    assert best >= 0.70, best


def test_sft_from_scratch_answers_few(measured):
    for n in measured["sizes"]:
        assert _cell(measured, "plain", "scratch", n)["exact"] <= 0.30


def test_the_held_out_set_is_whole(measured):
    assert measured["questions"]["held_out"] == len(questions.questions("held_out"))
    for r in measured["rows"]:
        assert set(r["per_kind"]) == {kind for kind, _ in questions.entity_splits()["held_out"]}


def test_lora_figures(measured):
    lora = measured["lora"]
    assert lora["share"]["share"] < 0.2
    assert lora["adapter_bytes"] < 0.3 * lora["model_bytes"]
    assert lora["merged_max_difference"] < 1e-4


# The command line.

@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    root = tmp_path_factory.mktemp("assistant")
    with open(root / "questions.jsonl", "w", encoding="utf-8") as f:
        for e in questions.training_examples(32, seed=0):
            f.write(json.dumps({"prompt": e.prompt, "response": e.response}) + "\n")
    done = _cli("finetune", "--train", root / "questions.jsonl", "--steps", "20", "--json", "--out", root / "assistant")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["built"] == "assistant"
    return root


def test_ask_and_chat_answer(assistant):
    asked = _cli("ask", "--model", assistant / "assistant", "--json", "where does a nurse work?", "what colour is the sky?")
    assert asked.returncode == 0, asked.stderr
    results = json.loads(asked.stdout)["results"]
    assert [r["question"] for r in results] == ["where does a nurse work?", "what colour is the sky?"]
    chatted = _cli("chat", "--model", assistant / "assistant", stdin="where does a nurse work?\n\nwhat colour is the sky?\n")
    assert chatted.returncode == 0, chatted.stderr
    assert chatted.stdout.splitlines() == [r["answer"] for r in results]


@pytest.mark.parametrize("content, args, message", [
    ('{"question": "a", "answer": "b"}\n', [], "expected columns 'text' and 'label'"),
    ('{"prompt": "a?", "response": ""}\n', [], "line 1: the 'response' is empty"),
    ('{"prompt": "a?", "response": "b."}\n' + '{"prompt": "' + "word " * 40 + '", "response": "b."}\n', [], "line 2: the example has"),
    ('{"prompt": "a?", "response": "b."}\n', ["--mode", "probe"], "a probe trains a classification head"),
])
def test_bad_instruction_files_are_one_line(tmp_path, content, args, message):
    (tmp_path / "bad.jsonl").write_text(content, encoding="utf-8")
    done = _cli("finetune", "--train", tmp_path / "bad.jsonl", *args, "--out", tmp_path / "out")
    assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_models_of_the_wrong_kind_are_named(assistant, tmp_path):
    from learnjax import foundation_model

    masked = foundation_model().save(tmp_path / "masked")
    done = _cli("finetune", "--model", masked, "--train", assistant / "questions.jsonl", "--out", tmp_path / "out")
    assert done.returncode == 1 and "is a masked model, which does not write" in done.stderr
    (tmp_path / "labeled.csv").write_text("text,label\nhi,a\nyo,b\n", encoding="utf-8")
    classifier = _cli("finetune", "--model", masked, "--train", tmp_path / "labeled.csv", "--steps", "2", "--out", tmp_path / "classifier")
    assert classifier.returncode == 0, classifier.stderr
    done = _cli("ask", "--model", tmp_path / "classifier", "hello?")
    assert done.returncode == 1 and "holds a 'classifier' model, not a 'assistant' model" in done.stderr


def test_rows_lose_only_the_padding_columns_and_train_the_same():
    from learnjax import NEXT_WORD_RECIPE, foundation_model
    from learnjax.training.loops import adamw, new_optimizer, train_next_word
    from learnjax.training.sft import ROW_WIDTH_STEP, without_padding_columns

    foundation = foundation_model(NEXT_WORD_RECIPE)
    rows = questions.chat_rows(foundation.tokenizer, questions.training_examples(32, seed=0), foundation.model.config.max_len)
    cut = without_padding_columns(*rows)
    longest = int((rows[1] > 0).sum(axis=1).max())
    assert cut[0].shape[1] % ROW_WIDTH_STEP == 0 and longest <= cut[0].shape[1] < longest + ROW_WIDTH_STEP
    assert all((whole[:, cut[0].shape[1]:] == 0).all() for whole in rows), "only padding is cut"
    losses = []
    for tokens, segments, learn in (rows, cut):
        model, trainable = build_assistant(foundation, "full")
        optimizer = new_optimizer(model, adamw(8, 2, 0.01), 1e-3, trainable)
        losses.append(train_next_word(model, optimizer, tokens, segments, learn, steps=8, batch_size=8).loss)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
