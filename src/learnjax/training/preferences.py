"""Learning from preferences: Direct Preference Optimization (Rafailov et al. 2023).

A preference is a prompt and two answers, one chosen over the other. DPO needs
no reward model and no sampling: it raises the chosen answer's log-probability
and lowers the rejected one's, each measured against a frozen reference model
(the supervised assistant), so that the policy moves only as far as the
preferences ask. β sets how far: a small β lets the policy stray further from
the reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from learnjax.data.questions import Example, chat_rows
from learnjax.training.loops import History, adamw, batch_indices, check_finite, new_optimizer, owned_copy
from learnjax.training.steps import next_word_targets


@dataclass(frozen=True)
class Preference:
    """A prompt and two answers to it: `chosen` is preferred to `rejected`."""

    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class DPOSettings:
    beta: float = 0.1
    steps: int = 120
    batch_size: int = 16
    learning_rate: float = 1e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0


def token_logprobs(model, tokens, segments, learn) -> tuple[jax.Array, jax.Array]:
    """The log-probability (B, T) of each answer token (the tokens `learn` marks,
    and its `[END]`) given those before it, and the weights (B, T) that mark them."""
    logits = model(tokens, segments)  # (B, T, V)
    targets, weights = next_word_targets(tokens, segments, learn)
    return -optax.softmax_cross_entropy_with_integer_labels(logits, targets) * weights, weights


def answer_logprobs(model, tokens, segments, learn) -> jax.Array:
    """The log-probability (B,) of each row's answer given its prompt."""
    return token_logprobs(model, tokens, segments, learn)[0].sum(-1)


# --8<-- [start:dpo_loss]
def dpo_loss(policy_chosen, policy_rejected,
             reference_chosen, reference_rejected, beta):
    """DPO's loss from the answers' log-probabilities (B,): how much more the
    policy prefers the chosen answer than the frozen reference does, pushed up
    through a logistic loss."""
    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    return -jax.nn.log_sigmoid(chosen_reward - rejected_reward).mean()
# --8<-- [end:dpo_loss]


def _pair_rows(tokenizer, preferences: list[Preference], max_len: int) -> tuple[np.ndarray, ...]:
    """Rows of the chosen answers, then rows of the rejected ones (tokens, segments, learn each)."""
    chosen = chat_rows(tokenizer, [Example(p.prompt, p.chosen) for p in preferences], max_len)
    rejected = chat_rows(tokenizer, [Example(p.prompt, p.rejected) for p in preferences], max_len)
    return (*chosen, *rejected)


@nnx.jit
def _reference_logprobs(model, tokens, segments, learn):
    return answer_logprobs(model, tokens, segments, learn)


@nnx.jit
def _dpo_step(model, optimizer, beta, rows, reference_chosen, reference_rejected):
    def loss_fn(model):
        chosen = answer_logprobs(model, *rows[:3])
        rejected = answer_logprobs(model, *rows[3:])
        loss = dpo_loss(chosen, rejected, reference_chosen, reference_rejected, beta)
        return loss, (chosen - reference_chosen - rejected + reference_rejected).mean()

    (loss, margin), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, margin


def preference_tune(assistant, preferences: list[Preference], settings: DPOSettings = DPOSettings(), seed: int = 0):
    """A copy of `assistant` (an `instruction_tuning.Assistant`) tuned by DPO on
    `preferences`, with `assistant` itself, unchanged, as the reference. Its
    history: the loss, and the mean margin (how much more than the reference
    the policy prefers the chosen answers) in the `accuracy` column."""
    if not preferences:
        raise ValueError("no preferences to learn from")
    if not settings.beta > 0:
        raise ValueError(f"beta must be positive, got {settings.beta!r}")
    rows = _pair_rows(assistant.tokenizer, preferences, assistant.model.config.max_len)
    # The reference's log-probabilities, once: a reference that does not change.
    reference = [np.asarray(_reference_logprobs(assistant.model, *rows[i:i + 3])) for i in (0, 3)]
    policy = owned_copy(assistant.model)
    optimizer = new_optimizer(policy, adamw(settings.steps, settings.warmup_steps, settings.weight_decay), settings.learning_rate)
    history = History()
    for step, batch in enumerate(batch_indices(len(preferences), settings.batch_size, settings.steps, seed)):
        loss, margin = _dpo_step(policy, optimizer, jnp.float32(settings.beta), tuple(r[batch] for r in rows),
                                 reference[0][batch], reference[1][batch])
        check_finite(float(loss), step)
        history.loss.append(float(loss))
        history.accuracy.append(float(margin))
    return dataclasses.replace(assistant, model=policy, mode="dpo", history=history)


def read_preferences(path) -> list[Preference]:
    """The preferences of a .csv, .tsv or .jsonl file with `prompt`, `chosen` and
    `rejected` columns; a bad file is refused with a one-line error naming it."""
    from learnjax.data.labeled_files import read_text_columns

    rows, _ = read_text_columns(path, ("prompt", "chosen", "rejected"))
    return [Preference(r["prompt"], r["chosen"], r["rejected"]) for r in rows]


def preference_tune_file(assistant_directory, path, settings: DPOSettings = DPOSettings(), seed: int = 0):
    """The assistant saved in `assistant_directory`, tuned by DPO on the
    preferences of the file `path` (`read_preferences`), itself the reference."""
    from learnjax.training.instruction_tuning import Assistant

    preferences = read_preferences(path)
    return preference_tune(Assistant.load(assistant_directory), preferences, settings, seed)
