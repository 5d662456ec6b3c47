"""Where a training run stands: the losses so far (`History`), and when and how
it saves checkpoints (`Checkpointing`). The training loops fill them in;
`learnjax.storage.checkpoints` writes and reads them, without importing the loops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


@dataclass
class Checkpointing:
    """Intermediate checkpoints of a run of `learnjax.training.loops.run_calls`, and where a resumed run starts.

    `save(step, history)` is called every `every` steps (never after the last:
    the caller saves the finished model), with the model and optimizer holding
    the state reached; `learnjax.storage.checkpoints.TrainingCheckpoints` writes it to
    disk. A run resumed from a checkpoint starts at step `start` with the
    `history` of the steps before it, and ends exactly as a run that was never
    interrupted: the same batches, masks and updates, bit for bit.
    """

    every: int | None = None
    save: Callable[[int, History], None] | None = None
    start: int = 0
    history: History = field(default_factory=History)

    def __post_init__(self):
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1):
            raise ValueError(f"checkpoint_every must be a positive number of steps, got {self.every!r}")
