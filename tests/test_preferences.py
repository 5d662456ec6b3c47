"""Preferences and rewards: the unknown entities, DPO against a frozen
reference, and the measured claims of the Preferences and rewards page."""

import random
import shutil

import pytest

from learnjax.data import corpus, questions, unknowns, world
from learnjax.data.facts import world_facts
from learnjax.training.recipe import MIXED_RECIPE, NEXT_WORD_RECIPE

# The unknown entities.


def built_in_texts(recipe):
    """The built-in corpus that `recipe` pre-trains on, question-and-answer text included."""
    texts = corpus.build_corpus(recipe.n_texts, recipe.corpus_seed)
    return questions.with_faq(texts, recipe.faq_share, recipe.corpus_seed) if recipe.faq_share else texts


def test_unknown_entities_are_words_of_the_corpus_with_no_fact_of_their_kind():
    facts = {(f.kind, f.entity) for f in world_facts()}
    texts = built_in_texts(MIXED_RECIPE)
    words = {w for t in texts for w in t.lower().replace(".", " ").replace(",", " ").split()}
    for fact in unknowns.unknown_facts():
        assert (fact.kind, fact.entity) not in facts, fact
        assert fact.entity in words, fact  # heard of: a word of the vocabulary, not [UNK]


@pytest.mark.parametrize("recipe", [NEXT_WORD_RECIPE, MIXED_RECIPE], ids=["plain", "mixed"])
def test_no_fact_of_an_unknown_entity_leaks_into_the_corpus(recipe):
    assert unknowns.leaks(built_in_texts(recipe)) == []


def test_a_leaked_fact_is_found():
    assert unknowns.leaks(["The umbrella is black.", "We met at the farm and caught fish together.", "I like tea."]) == [
        "The umbrella is black.", "We met at the farm and caught fish together."]


def test_an_unknown_given_a_colour_in_the_world_leaks_into_the_corpus(monkeypatch):
    monkeypatch.setattr(world, "COLOURS", (*world.COLOURS, ("umbrella", "black")))
    assert unknowns.leaks(corpus.build_corpus(4000, seed=0))


def test_unknown_splits_are_disjoint_cover_every_kind_and_abstain():
    splits = unknowns.unknown_splits()
    assert not splits["train"] & splits["dev"] and not splits["train"] & splits["held_out"] and not splits["dev"] & splits["held_out"]
    for split in splits:
        assert {kind for kind, _ in splits[split]} == set(unknowns.UNKNOWN), split
        assert {q.response for q in unknowns.unknown_questions(split)} == {unknowns.ABSTENTION}


def test_abstentions_in_supervised_data_are_about_train_unknowns_only():
    examples = unknowns.with_abstentions(questions.training_examples(256), 8)
    abstaining = [e for e in examples if e.response == unknowns.ABSTENTION]
    assert len(examples) == 256 and len(abstaining) == 8
    train = {entity for _, entity in unknowns.unknown_splits()["train"]}
    assert {e.fact.entity for e in abstaining} <= train


def test_a_made_up_answer_is_a_fact_of_the_kind_the_world_does_not_hold():
    rng = random.Random(0)
    for example in questions.questions("train")[:30] + unknowns.unknown_questions("train"):
        made_up = unknowns.made_up_answer(example, rng)
        assert made_up != example.response and made_up != unknowns.ABSTENTION
        assert unknowns.verdict(made_up, example) == "wrong"
    known = questions.questions("train")[0]
    assert unknowns.verdict(known.response, known) == "right"
    assert unknowns.verdict(unknowns.ABSTENTION, known) == "abstain"


# DPO.


@pytest.fixture(scope="module")
def tiny_assistant():
    from flax import nnx

    from learnjax.models.transformer import NextWordModel, TransformerConfig
    from learnjax.text.tokenizer import Tokenizer
    from learnjax.training.instruction_tuning import Assistant
    from learnjax.training.loops import History

    tokenizer = Tokenizer.from_texts(corpus.build_corpus(300) + [unknowns.ABSTENTION, "what colour is the umbrella?"])
    model = NextWordModel(TransformerConfig(len(tokenizer), 32, 32, 2, 4, 64), rngs=nnx.Rngs(0))
    return Assistant(model, tokenizer, "full", History())


def test_the_dpo_loss_is_log_2_where_the_policy_is_the_reference_and_falls_with_the_margin():
    import math

    import jax.numpy as jnp

    from learnjax.training.preferences import dpo_loss

    same = jnp.array([-3.0, -5.0])
    assert float(dpo_loss(same, same - 1, same, same - 1, 0.1)) == pytest.approx(math.log(2))
    better = float(dpo_loss(same + 1, same - 1, same, same - 1, 0.1))
    worse = float(dpo_loss(same - 1, same - 1, same, same - 1, 0.1))
    assert better < math.log(2) < worse


def test_dpo_learns_the_preferences_against_a_reference_that_stays_frozen(tiny_assistant):
    import jax
    import numpy as np
    from flax import nnx

    from learnjax.training.preferences import DPOSettings, Preference, answer_logprobs, preference_tune

    before = jax.tree.map(np.array, nnx.state(tiny_assistant.model, nnx.Param))
    pairs = [Preference("what colour is the umbrella?", unknowns.ABSTENTION, "it is red."),
             Preference("what colour is the banana?", "it is yellow.", "it is blue.")]
    tuned = preference_tune(tiny_assistant, pairs, DPOSettings(beta=0.5, steps=30, batch_size=2, learning_rate=3e-3))
    after = nnx.state(tiny_assistant.model, nnx.Param)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))), "the reference trained"
    assert tuned.mode == "dpo" and tuned.history.accuracy[-1] > 1.0  # the policy prefers the chosen answers more than the reference

    def margin(model):
        rows = questions.chat_rows(tiny_assistant.tokenizer, [questions.Example(p.prompt, a) for p in pairs for a in (p.chosen, p.rejected)], 32)
        logprobs = np.asarray(answer_logprobs(model, *rows))
        return logprobs[0::2] - logprobs[1::2]

    assert (margin(tuned.model) > margin(tiny_assistant.model) + 1.0).all()


def test_dpo_refuses_no_preferences_and_a_non_positive_beta(tiny_assistant):
    from learnjax.training.preferences import DPOSettings, Preference, preference_tune

    with pytest.raises(ValueError, match="no preferences"):
        preference_tune(tiny_assistant, [])
    with pytest.raises(ValueError, match="beta must be positive, got 0"):
        preference_tune(tiny_assistant, [Preference("a", "b", "c")], DPOSettings(beta=0))


# GRPO.


def test_advantages_are_normalised_within_each_group():
    import numpy as np

    from learnjax.training.rewards import group_advantages

    rewards = np.array([[1.0, 0.0, 0.0, 0.0], [10.0, 10.0, 12.0, 8.0], [-1.0, -1.0, -1.0, -1.0]])
    advantages = group_advantages(rewards)
    assert np.allclose(advantages[:2].mean(axis=1), 0, atol=1e-6) and np.allclose(advantages[:2].std(axis=1), 1, atol=1e-3)
    assert np.allclose(advantages[2], 0)  # one verdict for the whole group: nothing to learn


def test_each_reward_is_computed_on_its_own_sample(tiny_assistant):
    from learnjax.models.generation import join_words
    from learnjax.text.tokenizer import ASSISTANT_ID, END_ID
    from learnjax.training.rewards import GRPOSettings, sampled_groups

    asked = questions.questions("train")[:3]
    tokenizer = tiny_assistant.tokenizer
    groups = sampled_groups(tiny_assistant.model, tokenizer, asked, lambda answer, example: float(len(answer)),
                            GRPOSettings(group=4, max_new_tokens=6), seed=0)
    assert len(set(groups["rewards"].reshape(-1).tolist())) > 1  # the check below can tell the samples apart
    for i, row in enumerate(groups["rows"][0]):
        ids = row.tolist()
        answer = [t for t in ids[ids.index(ASSISTANT_ID) + 1:] if t not in (0, END_ID)]
        assert groups["rewards"].reshape(-1)[i] == len(join_words([tokenizer.vocab[t] for t in answer])), i


def test_the_world_reward_scores_right_abstain_and_wrong():
    from learnjax.training.rewards import world_reward

    known, unknown = questions.questions("held_out")[0], unknowns.unknown_questions("held_out")[0]
    penalised, unpenalised = world_reward("penalised"), world_reward("unpenalised")
    assert [penalised(a, known) for a in (known.response, unknowns.ABSTENTION, "it is blue.")] == [1, 0, -1]
    assert [unpenalised(a, unknown) for a in (unknowns.ABSTENTION, "it is blue.")] == [0, 0]
    assert penalised(unknowns.ABSTENTION, unknown) > penalised("it is blue.", unknown)
    with pytest.raises(ValueError, match="reward must be one of unpenalised, penalised; got 'kind'"):
        world_reward("kind")


# The measured claims (cached experiments).


@pytest.fixture(scope="module")
def preference_result():
    from learnjax.experiments import preferences

    return preferences.preferences()


@pytest.fixture(scope="module")
def reward_result():
    from learnjax.experiments import preferences

    return preferences.rewards()


def test_the_supervised_assistant_hallucinates_about_unknown_entities(preference_result):
    sft = preference_result["sft"]["held_out"]
    assert sft["unknown"]["wrong"] >= 0.5 and sft["known"]["right"] >= 0.5


def test_beta_is_chosen_on_dev_within_the_allowed_loss_of_known_accuracy():
    from learnjax.experiments.preferences import chosen_on_dev

    def scores(known, abstain):
        return {"known": {"right": known}, "unknown": {"abstain": abstain}}

    sft = scores(0.70, 0.0)
    # 1 abstains most but costs 15 points; 10 is the best within 5; 30 barely moves.
    assert chosen_on_dev({1.0: scores(0.55, 0.9), 10.0: scores(0.66, 0.6), 30.0: scores(0.70, 0.2)}, sft) == 10.0
    assert chosen_on_dev({1.0: scores(0.55, 0.9), 10.0: scores(0.60, 0.6)}, sft) == 10.0  # none within: the least loss
    assert chosen_on_dev({1.0: scores(0.66, 0.6), 10.0: scores(0.68, 0.6)}, sft) == 10.0  # a tie: the closer to SFT


def test_the_experiment_keeps_the_beta_its_dev_figures_choose(preference_result):
    from learnjax.experiments.preferences import chosen_on_dev

    dev = {float(beta): run["dev"] for beta, run in preference_result["dpo"].items()}
    assert preference_result["beta"] == chosen_on_dev(dev, preference_result["sft"]["dev"])


def test_the_held_out_figures_never_choose_beta(monkeypatch):
    """The experiment's own tuning and choice, its training replaced by runs
    whose dev figures pick β = 10 and whose held-out figures would pick β = 30."""
    from types import SimpleNamespace

    from learnjax.experiments import preferences as experiment
    from learnjax.training import preferences as dpo

    def scores(known, abstain):
        return {"known": {"right": known}, "unknown": {"abstain": abstain}}

    figures = {("sft", "dev"): scores(0.7, 0.0), ("sft", "held_out"): scores(0.7, 0.0),
               (10.0, "dev"): scores(0.68, 0.6), (10.0, "held_out"): scores(0.5, 0.9),
               (30.0, "dev"): scores(0.5, 0.9), (30.0, "held_out"): scores(0.7, 0.6)}
    monkeypatch.setattr(dpo, "preference_tune", lambda _, __, settings: SimpleNamespace(name=settings.beta))
    monkeypatch.setattr(experiment, "measured", lambda run, split: figures[(run.name, split)])
    *_, best = experiment.tuned_on_dev(SimpleNamespace(name="sft"), [], (10.0, 30.0), dpo.DPOSettings())
    assert best == 10.0


# The tunings cut hallucination by a quarter or more. Half, the first claim, held
# at its edge on one CPU and not on another (Sapphire Rapids: DPO from 81% to 52%,
# the penalised reward to 48%: two and three of the 27 questions short); a
# quarter holds on both, with two questions or more to spare.
CUT = 0.25


def test_dpo_at_the_dev_beta_cuts_hallucination_and_keeps_known_accuracy(preference_result):
    sft = preference_result["sft"]["held_out"]
    chosen = preference_result["dpo"][str(preference_result["beta"])]["held_out"]
    assert chosen["unknown"]["wrong"] <= sft["unknown"]["wrong"] * (1 - CUT)
    assert sft["known"]["right"] - chosen["known"]["right"] <= preference_result["settings"]["known_loss_allowed"] + 1e-9


def test_a_small_beta_abstains_about_known_things_too(preference_result):
    """The trade-off the page draws: far from the reference, "i don't know." spreads to known questions."""
    runs = preference_result["dpo"]
    low, high = runs[min(runs, key=float)]["held_out"], runs[max(runs, key=float)]["held_out"]
    assert low["known"]["abstain"] > high["known"]["abstain"] + 0.1 and low["known"]["right"] < high["known"]["right"]


def test_only_the_reward_that_penalises_a_wrong_answer_cuts_hallucination(reward_result):
    from learnjax.experiments.preferences import KNOWN_LOSS_ALLOWED

    sft, rl = reward_result["sft"]["held_out"], reward_result["rl"]
    assert rl["unpenalised"]["held_out"]["unknown"]["wrong"] > sft["unknown"]["wrong"] * (1 - CUT)
    penalised = rl["penalised"]["held_out"]
    assert penalised["unknown"]["wrong"] <= sft["unknown"]["wrong"] * (1 - CUT)
    assert sft["known"]["right"] - penalised["known"]["right"] <= KNOWN_LOSS_ALLOWED + 1e-9


def test_rewards_make_the_model_say_what_it_could_already_sample(reward_result):
    before = reward_result["sft"]["pass_at"]
    assert before["16"] - before["1"] > 0.2  # sixteen tries find many answers one try misses
    for run in reward_result["rl"].values():
        assert abs(run["pass_at"]["16"] - before["16"]) <= 0.05


# Preference and reward tuning from the user's files.


def test_a_preference_file_without_a_rejected_answer_is_refused_naming_its_line(tmp_path):
    from learnjax.training.preferences import read_preferences

    path = tmp_path / "pairs.csv"
    path.write_text("prompt,chosen\nwhat colour is the banana?,it is yellow.\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"pairs.csv' line 2: no 'rejected' column"):
        read_preferences(path)
    path.write_text("prompt,chosen,rejected\nwhat colour is the banana?,it is yellow.,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"pairs.csv' line 2: the 'rejected' is empty"):
        read_preferences(path)


def test_the_exact_reward_matches_the_accepted_answer_as_the_assistant_writes_it():
    from learnjax.training.rewards import exact_reward

    question = questions.Example("what colour is the banana?", "It is Yellow.")
    reward = exact_reward(1.0, 0.0, -1.0)
    assert [reward(a, question) for a in ("it is yellow.", unknowns.ABSTENTION, "it is blue.")] == [1.0, 0.0, -1.0]


def test_tuning_from_files_keeps_the_saved_assistant_as_it_was(tiny_assistant, tmp_path):
    import json

    from learnjax.training.instruction_tuning import Assistant
    from learnjax.training.preferences import DPOSettings, preference_tune_file
    from learnjax.training.rewards import GRPOSettings, reinforce_file

    tiny_assistant.save(tmp_path / "assistant")
    saved = sorted((p.name, p.read_bytes()) for p in (tmp_path / "assistant").iterdir())
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "what colour is the umbrella?", "chosen": unknowns.ABSTENTION,
                                 "rejected": "it is red."}) + "\n", encoding="utf-8")
    tuned = preference_tune_file(tmp_path / "assistant", pairs, DPOSettings(steps=3, batch_size=1))
    asked = tmp_path / "questions.csv"
    asked.write_text("prompt,answer\nwhat colour is the banana?,It is yellow.\n", encoding="utf-8")
    rewarded = reinforce_file(tmp_path / "assistant", asked, wrong=-1.0,
                              settings=GRPOSettings(iterations=2, questions_per_batch=1, group=2, max_new_tokens=4))
    assert tuned.mode == "dpo" and len(tuned.history.loss) == 3
    assert rewarded.mode == "grpo" and len(rewarded.history.loss) == 2
    assert sorted((p.name, p.read_bytes()) for p in (tmp_path / "assistant").iterdir()) == saved
    assert isinstance(Assistant.load(tmp_path / "assistant"), Assistant)


# The command line: `learnjax prefer` and `learnjax reinforce`.


@pytest.fixture(scope="module")
def saved_assistant(tiny_assistant, tmp_path_factory):
    """The tiny assistant saved as `learnjax finetune` saves one, with a file of
    preferences and one of questions beside it."""
    import json

    root = tmp_path_factory.mktemp("cli")
    tiny_assistant.save(root / "assistant")
    with open(root / "pairs.jsonl", "w", encoding="utf-8") as f:
        for prompt, chosen, rejected in (("what colour is the umbrella?", unknowns.ABSTENTION, "it is red."),
                                         ("what colour is the banana?", "it is yellow.", "it is blue.")):
            f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    (root / "questions.csv").write_text("prompt,answer\nwhat colour is the banana?,It is yellow.\nwhat colour is the umbrella?,"
                                        "I don't know.\n", encoding="utf-8")
    return root


def _files(directory):
    return sorted((p.name, p.read_bytes()) for p in directory.iterdir())


@pytest.mark.parametrize("command", [
    ["prefer", "--pairs", "pairs.jsonl", "--steps", "3", "--beta", "0.5"],
    ["reinforce", "--questions", "questions.csv", "--iterations", "2", "--group", "2", "--wrong-reward", "-1"],
], ids=["prefer", "reinforce"])
def test_the_tuning_commands_save_a_new_assistant_and_leave_theirs_as_it_was(saved_assistant, tmp_path, capsys, command):
    import json

    from learnjax.cli import main
    from learnjax.training.instruction_tuning import Assistant

    before = _files(saved_assistant / "assistant")
    args = [command[0], "--model", str(saved_assistant / "assistant"), *[str(saved_assistant / a) if a.endswith((".jsonl", ".csv")) else a
                                                                         for a in command[1:]]]
    assert main([*args, "--json", "--out", str(tmp_path / "tuned")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["out"] == str(tmp_path / "tuned") and report["mode"] == {"prefer": "dpo", "reinforce": "grpo"}[command[0]]
    assert report.get("preferences", report.get("questions")) == 2
    tuned = Assistant.load(tmp_path / "tuned")
    assert len(tuned.history.loss) == (3 if command[0] == "prefer" else 2)
    assert _files(saved_assistant / "assistant") == before
    assert main(["ask", "--model", str(tmp_path / "tuned"), "what colour is the banana?"]) == 0


@pytest.mark.parametrize("command, content, message, status", [
    ("prefer", "prompt,chosen\nwhat colour is the banana?,it is yellow.\n", "line 2: no 'rejected' column", 1),
    ("prefer", "prompt,chosen,rejected\nwhat colour is the banana?,it is yellow.,\n", "line 2: the 'rejected' is empty", 1),
    ("prefer", "prompt,chosen,rejected\n" + "what colour is the banana? " * 10 + ",it is yellow.,it is blue.\n",
     "line 2: the example has", 1),
    ("reinforce", "prompt,answer\nwhat colour is the banana?,\n", "line 2: the 'answer' is empty", 1),
    ("reinforce", "prompt,response\nwhat colour is the banana?,it is yellow.\n", "line 2: no 'answer' column", 1),
    ("reinforce", "prompt,answer\nwhat colour is the banana?," + "yellow " * 40 + "\n", "line 2: the example has", 1),
])
def test_bad_files_are_refused_in_one_line_and_a_saved_model_in_out_is_kept(saved_assistant, tmp_path, capsys, command, content,
                                                                            message, status):
    from learnjax.cli import main
    from one_line import is_one_line

    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    option = "--pairs" if command == "prefer" else "--questions"
    out = tmp_path / "out"
    tiny = _files(saved_assistant / "assistant")
    shutil.copytree(saved_assistant / "assistant", out)  # a model already there, replaced only by a finished run
    assert main([command, "--model", str(saved_assistant / "assistant"), option, str(bad), "--overwrite", "--out", str(out)]) == status
    err = capsys.readouterr().err
    assert is_one_line(err) and message in err, err
    assert _files(out) == tiny


@pytest.mark.parametrize("args, message", [
    (["prefer", "--pairs", "pairs.jsonl", "--beta", "0"], "argument --beta: must be positive, got 0"),
    (["prefer", "--pairs", "pairs.jsonl", "--steps", "-3"], "argument --steps: must be at least 1, got -3"),
    (["reinforce", "--questions", "questions.csv", "--group", "1"], "argument --group: must be at least 2, got 1"),
    (["reinforce", "--questions", "questions.csv", "--wrong-reward", "nan"], "argument --wrong-reward: must be a number"),
    (["reinforce", "--questions", "questions.csv", "--temperature", "0"], "argument --temperature: must be positive, got 0"),
    (["reinforce", "--questions", "missing.csv"], "missing.csv"),
])
def test_bad_values_are_named_in_one_line_before_anything_is_saved(saved_assistant, tmp_path, capsys, args, message):
    from learnjax.cli import main
    from one_line import is_one_line

    args = [str(saved_assistant / a) if a.endswith((".jsonl", ".csv")) else a for a in args]
    status = main([*args, "--model", str(saved_assistant / "assistant"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status in (1, 2) and is_one_line(err) and message in err, err
    assert not (tmp_path / "out").exists()


def test_the_assistant_read_is_not_the_one_written(saved_assistant, capsys):
    from learnjax.cli import main

    before = _files(saved_assistant / "assistant")
    args = ["prefer", "--model", str(saved_assistant / "assistant"), "--pairs", str(saved_assistant / "pairs.jsonl")]
    assert main([*args, "--overwrite", "--out", str(saved_assistant / "assistant")]) == 1
    assert "is the model being read" in capsys.readouterr().err
    assert _files(saved_assistant / "assistant") == before
