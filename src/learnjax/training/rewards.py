"""Learning from rewards that can be checked: GRPO (Shao et al. 2024).

No reward model: each answer is scored exactly against the world. For each
question the policy samples a group of answers; an answer's advantage is its
reward against the group's (minus the group's mean, over its spread), so the
policy learns which of its own answers are better than its usual one. The
update is PPO's clipped one (Schulman et al. 2017), with a penalty for
drifting from the supervised model (a KL estimate per token).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx

from learnjax.data.questions import Example, chat_ids
from learnjax.models.generation import Sampling, continue_ids, join_words
from learnjax.text.tokenizer import ASSISTANT_ID, END_ID
from learnjax.training.loops import History, adamw, check_finite, new_optimizer, owned_copy
from learnjax.training.preferences import token_logprobs

# Rewards for a right answer, an abstention and a wrong answer.
REWARDS = {"unpenalised": (1.0, 0.0, 0.0), "penalised": (1.0, 0.0, -1.0)}


@dataclass(frozen=True)
class GRPOSettings:
    iterations: int = 30
    questions_per_batch: int = 16
    group: int = 8  # answers sampled per question
    updates_per_batch: int = 2  # the later updates are off the sampling policy: clipping counts
    clip: float = 0.2
    kl_weight: float = 0.05
    temperature: float = 1.0
    learning_rate: float = 6e-5
    max_new_tokens: int = 8


# --8<-- [start:group_advantages]
def group_advantages(rewards: np.ndarray) -> np.ndarray:
    """Each answer's reward (Q, G) against its own group's: zero where the whole
    group scored the same (nothing to learn from it)."""
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    return centred / (rewards.std(axis=1, keepdims=True) + 1e-6)
# --8<-- [end:group_advantages]


# --8<-- [start:grpo_loss]
def grpo_loss(logprobs, sampled_logprobs, reference_logprobs,
              advantages, weights, clip, kl_weight):
    """Per answer token (B, T): the clipped policy-gradient objective, minus a
    penalty for the policy's drift from the reference; averaged, negated."""
    ratio = jnp.exp(logprobs - sampled_logprobs)
    gain = jnp.minimum(ratio * advantages[:, None],
                       jnp.clip(ratio, 1 - clip, 1 + clip) * advantages[:, None])
    log_ratio = reference_logprobs - logprobs
    kl = jnp.exp(log_ratio) - log_ratio - 1  # >= 0, 0 where they agree
    return -((gain - kl_weight * kl) * weights).sum() / weights.sum()
# --8<-- [end:grpo_loss]


def answer_rows(prompts: list[list[int]], answers: list[list[int]], max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of prompt then answer tokens, as `questions.chat_rows` lays them out."""
    tokens = np.zeros((len(prompts), max_len), np.int32)
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        ids = (prompt + answer)[:max_len]
        tokens[i, : len(ids)] = ids
    segments = (tokens != 0).astype(np.int32)
    learn = (np.cumsum(tokens == ASSISTANT_ID, axis=1) > 0) & (tokens != ASSISTANT_ID) & (segments > 0)
    return tokens, segments, learn.astype(np.int32)


def sampled_groups(policy, tokenizer, examples: list[Example], reward: Callable[[str, Example], float],
                   settings: GRPOSettings, seed: int) -> dict:
    """A group of sampled answers per example, scored: the rows to learn from,
    the answers as text, their rewards (Q, G) and advantages (Q*G,)."""
    prompts = [chat_ids(tokenizer, e.prompt) for e in examples for _ in range(settings.group)]
    sampled = continue_ids(policy, prompts, max_new_tokens=settings.max_new_tokens,
                           sampling=Sampling(settings.temperature), seed=seed)
    texts = [join_words([tokenizer.vocab[i] for i in ids if i != END_ID]) for ids in sampled]
    asked = [e for e in examples for _ in range(settings.group)]
    rewards = np.array([reward(text, e) for text, e in zip(texts, asked)], np.float32).reshape(len(examples), settings.group)
    return {"rows": answer_rows(prompts, sampled, policy.config.max_len), "answers": texts,
            "rewards": rewards, "advantages": group_advantages(rewards).reshape(-1)}


@nnx.jit
def _logprobs(model, tokens, segments, learn):
    return token_logprobs(model, tokens, segments, learn)[0]


@nnx.jit
def _grpo_step(model, optimizer, rows, sampled, reference, advantages, clip, kl_weight):
    def loss_fn(model):
        logprobs, weights = token_logprobs(model, *rows)
        return grpo_loss(logprobs, sampled, reference, advantages, weights, clip, kl_weight)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def reinforce(assistant, examples: list[Example], reward: Callable[[str, Example], float],
              settings: GRPOSettings = GRPOSettings(), seed: int = 0):
    """A copy of `assistant` tuned by GRPO on `examples` (questions with their
    accepted answers), each sampled answer scored by `reward(answer, example)`;
    `assistant` itself, unchanged, is the reference. Its history: the loss, and
    the mean reward of each batch's samples in the `accuracy` column."""
    if not examples:
        raise ValueError("no questions to learn from")
    policy = owned_copy(assistant.model)
    optimizer = new_optimizer(policy, adamw(settings.iterations * settings.updates_per_batch, 0, 0.0), settings.learning_rate)
    rng, history = random.Random(seed), History()
    for iteration in range(settings.iterations):
        batch = rng.sample(examples, min(settings.questions_per_batch, len(examples)))
        groups = sampled_groups(policy, assistant.tokenizer, batch, reward, settings, seed=seed * 100_003 + iteration)
        rows = tuple(jnp.asarray(r) for r in groups["rows"])
        sampled, reference = _logprobs(policy, *rows), _logprobs(assistant.model, *rows)
        for _ in range(settings.updates_per_batch):
            loss = _grpo_step(policy, optimizer, rows, sampled, reference, jnp.asarray(groups["advantages"]),
                              jnp.float32(settings.clip), jnp.float32(settings.kl_weight))
        check_finite(float(loss), iteration)
        history.loss.append(float(loss))
        history.accuracy.append(float(groups["rewards"].mean()))
    return dataclasses.replace(assistant, model=policy, mode="grpo", history=history)


def world_reward(scheme: str) -> Callable[[str, Example], float]:
    """The exact reward of `REWARDS[scheme]`: the world says whether an answer is right."""
    from learnjax.data.unknowns import verdict

    if scheme not in REWARDS:
        raise ValueError(f"reward must be one of {', '.join(REWARDS)}; got {scheme!r}")
    right, abstain, wrong = REWARDS[scheme]
    return lambda answer, example: {"right": right, "abstain": abstain, "wrong": wrong}[verdict(answer, example)]


def as_written(answer: str) -> str:
    """An answer as the assistant writes it: lower-case words, so that "It is
    yellow." matches its "it is yellow."."""
    from learnjax.text.tokenizer import split_words

    return join_words(split_words(answer.lower()))


def exact_reward(right: float = 1.0, abstain: float = 0.0, wrong: float = 0.0) -> Callable[[str, Example], float]:
    """A reward for answers to questions with one accepted answer each (the
    example's `response`): `right` for it, word for word, `abstain` for "i don't
    know." and `wrong` for anything else."""
    from learnjax.data.unknowns import verdict

    scores = {"right": right, "abstain": abstain, "wrong": wrong}
    return lambda answer, example: scores[verdict(answer, dataclasses.replace(example, response=as_written(example.response)))]


def read_rewarded_questions(path) -> list[Example]:
    """The questions of a .csv, .tsv or .jsonl file with `prompt` and `answer`
    columns, each answer the one accepted; a bad file is refused with a one-line
    error naming it."""
    from learnjax.data.labeled_files import read_text_columns

    rows, _ = read_text_columns(path, ("prompt", "answer"))
    return [Example(r["prompt"], r["answer"]) for r in rows]


def reinforce_file(assistant_directory, path, *, abstain: float = 0.0, wrong: float = 0.0,
                   settings: GRPOSettings = GRPOSettings(), seed: int = 0):
    """The assistant saved in `assistant_directory`, tuned by GRPO on the
    questions of the file `path` (`read_rewarded_questions`), each answer scored
    by `exact_reward(1, abstain, wrong)`; the saved assistant is the reference."""
    from learnjax.training.instruction_tuning import Assistant

    examples = read_rewarded_questions(path)
    return reinforce(Assistant.load(assistant_directory), examples, exact_reward(1.0, abstain, wrong), settings, seed)
