"""How long to train: a plan from the data's size, and early stopping on a validation loss.

Small datasets need many passes, large ones a fraction of one; a fixed epoch count is wrong
at one end or the other. The plan runs at least `min_steps` optimiser steps (small data),
at most `max_epochs` passes and `max_steps` steps (large data), and measures the loss on a
validation split of the training data every `eval_every` steps; training stops when that
loss has not improved for `patience` measurements (once `min_steps` are done), and the
adapter is the one from the best measurement, not the last step.
"""

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from retrain.settings import RetrainSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    train_examples: int
    validation_examples: int
    steps_per_epoch: int
    max_steps: int  # the loop never runs past this
    min_steps: int  # nor stops early before this
    eval_every: int  # steps between validation losses; 0: no validation, fixed length
    patience: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def validation_size(n: int, settings: RetrainSettings) -> int:
    """A share of the training data, within [validation_min, validation_max]; none when
    switched off or when it would leave fewer training than validation examples."""
    if settings.validation_fraction == 0:
        return 0
    size = round(n * settings.validation_fraction)
    size = min(settings.validation_max, max(settings.validation_min, size))
    return size if n - size >= size else 0


def split_validation(
    keyed: list[tuple[str, T]], settings: RetrainSettings
) -> tuple[list[T], list[T]]:
    """(train, validation) by a hash of each key: stable whatever else is in the data."""
    size = validation_size(len(keyed), settings)

    def rank(key: str) -> bytes:
        return hashlib.sha256(f"val:{settings.seed}:{key}".encode()).digest()

    ordered = sorted(range(len(keyed)), key=lambda i: rank(keyed[i][0]))
    chosen = set(ordered[:size])
    train = [row for i, (_, row) in enumerate(keyed) if i not in chosen]
    validation = [row for i, (_, row) in enumerate(keyed) if i in chosen]
    return train, validation


def make_plan(train: int, validation: int, settings: RetrainSettings) -> Plan:
    s = settings
    per_epoch = max(1, math.ceil(train / s.batch_size))
    by_epochs = max(1, math.ceil(per_epoch * s.max_epochs))
    cap = min(s.max_steps, max(by_epochs, s.min_steps))
    if validation == 0:
        every = 0
    elif s.eval_every:
        every = s.eval_every
    else:
        every = min(s.eval_every_max, max(s.eval_every_min, per_epoch))
    return Plan(
        train_examples=train,
        validation_examples=validation,
        steps_per_epoch=per_epoch,
        max_steps=cap,
        min_steps=min(s.min_steps, cap),
        eval_every=min(every, cap),
        patience=s.patience,
    )


@dataclass
class EarlyStopping:
    """Keeps the validation curve, the best step and why training ended."""

    plan: Plan
    curve: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0
    best_loss: float = math.inf
    since_best: int = 0

    def due(self, step: int) -> bool:
        every = self.plan.eval_every
        return every > 0 and (step % every == 0 or step == self.plan.max_steps)

    def record(self, step: int, loss: float) -> bool:
        """Add a measurement; True when it is the best so far (keep these weights)."""
        self.curve.append((step, round(loss, 6)))
        if loss < self.best_loss - 1e-6:
            self.best_step, self.best_loss, self.since_best = step, loss, 0
            return True
        self.since_best += 1
        return False

    def should_stop(self, step: int) -> bool:
        return step >= self.plan.min_steps and self.since_best >= self.plan.patience

    def reason(self, step: int) -> str:
        if self.plan.eval_every == 0:
            return f"fixed length: {step} steps (no validation split)"
        if step < self.plan.max_steps:
            return (
                f"early stop at step {step}: validation loss did not improve for "
                f"{self.plan.patience} measurements; best at step {self.best_step}"
            )
        return f"step cap {self.plan.max_steps} reached; best at step {self.best_step}"

    def state(self) -> dict[str, Any]:
        return {
            "curve": self.curve,
            "best_step": self.best_step,
            "best_loss": self.best_loss,
            "since_best": self.since_best,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.curve = [(int(s), float(v)) for s, v in state.get("curve", [])]
        self.best_step = int(state.get("best_step", 0))
        self.best_loss = float(state.get("best_loss", math.inf))
        self.since_best = int(state.get("since_best", 0))
