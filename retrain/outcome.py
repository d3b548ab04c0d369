"""What a run did and decided: the record written to run.json, and where a run reports
its progress (the CLI draws rich progress bars from a Reporter)."""

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.gate import GateDecision

if TYPE_CHECKING:
    from retrain.train import TrainResult

log = logging.getLogger(__name__)


class Reporter:
    """Where a run says how far it is; the CLI draws rich progress bars from it."""

    def stage(self, name: str) -> None:
        log.info("retrain: %s", name)

    def advance(self, stage: str, done: int, total: int, detail: str = "") -> None:
        return None

    def finish(self) -> None:
        """The run is over, whatever its outcome."""
        return None


@dataclass
class SetScores:
    """Means of both sides on one evaluation set (the run's held-out split, the golden set)."""

    name: str
    size: int
    candidate: dict[str, float]
    production: dict[str, float]
    arms: dict[str, dict[str, float]] = field(default_factory=dict)  # prompting arm -> means


@dataclass
class RunOutcome:
    """Everything one run did and decided: run.json is this object, written as it goes."""

    run_id: str
    alias: str
    baseline: str
    run_dir: Path
    outcome: str = "running"  # promoted, canary, rollout, rejected, failed
    error: str | None = None
    curation: dict[str, Any] = field(default_factory=dict)
    dataset_hash: str = ""
    train_examples: int = 0
    eval_examples: int = 0
    golden: dict[str, Any] = field(default_factory=dict)  # items, hash
    train: dict[str, Any] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[SetScores] = field(default_factory=list)
    judge: dict[str, Any] = field(default_factory=dict)
    objective: dict[str, str] = field(default_factory=dict)  # objective, reason
    stages: list[dict[str, Any]] = field(default_factory=list)  # one train summary per stage
    preference: dict[str, Any] = field(default_factory=dict)  # its data and gate evidence
    arms: dict[str, Any] = field(default_factory=dict)  # the prompting arms, each side's cost
    retention: dict[str, Any] = field(default_factory=dict)  # the forgetting check
    decision: dict[str, Any] = field(default_factory=dict)  # adapter, prompt or production
    prompt: dict[str, Any] = field(default_factory=dict)  # the template version it shipped
    gate: GateDecision | None = None
    version: int | None = None

    def summary(self) -> str:
        if self.gate is None:
            return f"{self.outcome}: {self.error or 'no gate decision'}"
        target = f" {self.alias}@{self.version}" if self.version else ""
        if self.prompt.get("version"):
            target = f" {self.prompt['template']} version {self.prompt['version']}"
        return (
            f"{self.outcome}{target}: {self.gate.primary} "
            f"{self.gate.production[self.gate.primary]:.3f} -> "
            f"{self.gate.candidate[self.gate.primary]:.3f} ({self.gate.eval_set})"
        )

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def train_summary(result: "TrainResult") -> dict[str, Any]:
    return {
        "plan": result.plan.as_dict() if result.plan else None,
        "stop_rule": result.stop_rule,
        "stop_reason": result.stop_reason,
        "best_step": result.best_step,
        "best_validation_loss": result.best_validation_loss,
        "steps": result.steps,
        "tokens": result.tokens,
        "seconds": round(result.seconds, 2),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "quantized": result.quantized,
        "device": result.device,
        "peak_memory_bytes": result.peak_memory_bytes,
        "final_loss": result.losses[-1] if result.losses else None,
        "resumed_from": result.resumed_from,
    }
