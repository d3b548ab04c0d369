"""A small search over training settings: every combination of the values in
`LORALOOP_RETRAIN_SEARCH` (at most `SEARCH_MAX_TRIALS`) is trained on the same data, and the
trial with the lowest validation loss becomes the run's adapter. Each trial keeps its own
directory, plan and curves; all of them go to the run record and MLflow."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.dataset import Example
from retrain.settings import RetrainSettings

if TYPE_CHECKING:
    from retrain.train import Progress, TrainResult

INTEGER = {"lora_r", "lora_alpha"}


class SearchError(ValueError):
    """A search that would run more trials than allowed; worded for the user."""


@dataclass
class Trial:
    params: dict[str, float]
    result: TrainResult

    @property
    def score(self) -> float:
        loss = self.result.best_validation_loss
        return float("inf") if loss is None else loss

    def summary(self) -> dict[str, Any]:
        r = self.result
        return {
            "params": self.params,
            "best_validation_loss": r.best_validation_loss,
            "best_step": r.best_step,
            "steps": r.steps,
            "stop_rule": r.stop_rule,
            "stop_reason": r.stop_reason,
            "validation": r.validation,
            "seconds": round(r.seconds, 2),
        }


def grid(settings: RetrainSettings) -> list[dict[str, float]]:
    """The trials' overrides: the product of the searched values, in a stable order."""
    if not settings.search:
        return []
    names = sorted(settings.search)
    trials = [
        {n: (int(v) if n in INTEGER else v) for n, v in zip(names, values, strict=True)}
        for values in itertools.product(*(settings.search[n] for n in names))
    ]
    if len(trials) > settings.search_max_trials:
        raise SearchError(
            f"LORALOOP_RETRAIN_SEARCH asks for {len(trials)} trials; at most "
            f"{settings.search_max_trials} (LORALOOP_RETRAIN_SEARCH_MAX_TRIALS)"
        )
    return trials


def train_best(
    model_dir: Path,
    settings: RetrainSettings,
    run_dir: Path,
    examples: list[Example],
    progress: Callable[[int], Progress] | None = None,
) -> tuple[TrainResult, list[Trial]]:
    """Train one adapter, or every trial of the search and keep the best.
    `progress(i)` gives trial i's progress callback."""
    from retrain.train import Trainer  # torch and peft take seconds to import: on use

    overrides = grid(settings)
    if not overrides:
        result = Trainer(model_dir, settings, run_dir).train(examples, progress and progress(0))
        return result, []
    trials = []
    for i, params in enumerate(overrides):
        # a trial's rate is the rate it asked for, not one scaled to the data's size
        exact = {"learning_rate_examples": 0} if "learning_rate" in params else {}
        trial_settings = settings.model_copy(update=params | exact)
        trainer = Trainer(model_dir, trial_settings, run_dir / "trials" / f"{i:02d}")
        trials.append(Trial(params, trainer.train(examples, progress and progress(i))))
    best = min(trials, key=lambda t: t.score)
    return best.result, trials
