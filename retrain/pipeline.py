"""One retraining run for an alias: dataset, curation, training, the gate, publishing.

Everything up to the gate happens in the run's own directory; production changes only at
the very end, through the registry, and only when the gate passes. A failure at any step
leaves production as it was, and the run record (run.json, report.html, the job history)
says where and why.
"""

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from retrain.curate import curate
from retrain.dataset import DatasetError, Example, content_hash, from_feedback, read_seed
from retrain.evaluate import Evaluator
from retrain.gate import GateDecision, decide
from retrain.report import write_report
from retrain.settings import RetrainSettings
from retrain.tracking import Tracker
from retrain.train import Trainer, TrainResult
from serve.registry import Registry, RegistryError

log = logging.getLogger(__name__)


class RetrainError(ValueError):
    """A run that cannot start or finish, worded for the user; production is untouched."""


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
class RunOutcome:
    run_id: str
    alias: str
    outcome: str  # promoted, canary, rejected
    run_dir: Path
    baseline: str
    dataset_hash: str
    train_examples: int
    eval_examples: int
    gate: GateDecision
    version: int | None = None
    train: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        target = f" {self.alias}@{self.version}" if self.version else ""
        return (
            f"{self.outcome}{target}: {self.gate.primary} "
            f"{self.gate.production[self.gate.primary]:.3f} -> "
            f"{self.gate.candidate[self.gate.primary]:.3f}"
        )


class Retrainer:
    """The steps of a run, with their collaborators given (tests swap the engine URL)."""

    def __init__(
        self,
        db: Engine,
        settings: RetrainSettings,
        registry: Registry,
        model_dir: Path,
        engine_url: str,
        tracker: Tracker | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.model_dir = model_dir
        self.evaluator = Evaluator(
            engine_url, settings.metrics, settings.eval_max_tokens, settings.eval_concurrency
        )
        self.tracker = tracker or Tracker(settings.mlflow_uri, settings.runs_dir / "mlflow")

    def baseline(self, alias: str, new: bool) -> tuple[str, int | None]:
        """The engine name production answers under, and its version (None: base model)."""
        with Session(self.db) as session:
            row = self.registry.alias(session, alias)
            if row is None or row.production_version is None:
                if new:
                    return self.registry.base_model, None
                raise RetrainError(
                    f"alias '{alias}' has no production version to compare with; "
                    "--new trains its first version against the base model"
                )
            version = self.registry.version(session, alias, row.production_version)
            return version.engine_name, version.version

    def examples(self, alias: str, new: bool) -> list[Example]:
        with Session(self.db) as session:
            reviewed = from_feedback(session, None if new else alias, self.settings.min_score)
        seeds = [ex for path in self.settings.seed_files for ex in read_seed(path)]
        return reviewed + seeds

    def run(
        self, alias: str, run_id: str, new: bool = False, reporter: Reporter | None = None
    ) -> RunOutcome:
        report = reporter or Reporter()
        baseline, parent = self.baseline(alias, new)
        run_dir = self.settings.runs_dir / alias / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"run_id": run_id, "alias": alias, "baseline": baseline}
        try:
            outcome = self._run(alias, run_id, run_dir, baseline, parent, record, report)
        except Exception as exc:
            record["outcome"] = "failed"
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            report.finish()
            (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
            write_report(run_dir, record, record.get("losses", []))
            self.tracker.log_run(record, run_dir)
        return outcome

    def _run(
        self,
        alias: str,
        run_id: str,
        run_dir: Path,
        baseline: str,
        parent: int | None,
        record: dict[str, Any],
        report: Reporter,
    ) -> RunOutcome:
        s = self.settings
        report.stage("dataset")
        examples = self.examples(alias, new=parent is None)
        if not examples:
            raise DatasetError("no reviewed interactions and no seed files: nothing to learn")
        curated = curate(examples, s)
        record["curation"] = curated.report
        dataset_hash = content_hash(curated.train + curated.eval)
        record["dataset_hash"] = dataset_hash

        report.stage("train")
        result = Trainer(self.model_dir, s, run_dir).train(
            curated.train, lambda d, t, loss: report.advance("train", d, t, f"loss {loss:.3f}")
        )
        record["losses"] = result.losses
        record["train"] = _train_summary(result)

        report.stage("evaluate")
        candidate_name = f"candidate-{alias}-{run_id}"
        self.evaluator.load(candidate_name, result.adapter_dir)
        try:
            total = 2 * len(curated.eval)
            production = self.evaluator.evaluate(
                baseline, curated.eval, lambda d, _: report.advance("evaluate", d, total)
            )
            candidate = self.evaluator.evaluate(
                candidate_name,
                curated.eval,
                lambda d, _: report.advance("evaluate", len(curated.eval) + d, total),
            )
        finally:
            self.evaluator.unload(candidate_name)
        gate = decide(
            candidate.metrics, production.metrics, s.primary_metric, s.margin, s.tolerance
        )
        record["gate"] = asdict(gate)
        (run_dir / "eval_predictions.jsonl").write_text(
            "".join(
                json.dumps({"id": ex.id, "reference": ex.answer, "production": p, "candidate": c})
                + "\n"
                for ex, p, c in zip(
                    curated.eval, production.predictions, candidate.predictions, strict=True
                )
            )
        )
        outcome = RunOutcome(
            run_id,
            alias,
            "rejected",
            run_dir,
            baseline,
            dataset_hash,
            len(curated.train),
            len(curated.eval),
            gate,
            train=record["train"],
        )
        if gate.promote:
            report.stage("publish")
            lineage = {
                "parent_version": parent,
                "run_id": run_id,
                "base_model": self.registry.base_model,
                "dataset_hash": dataset_hash,
                "dataset_row_ids": sorted(ex.id for ex in curated.train),
                "eval_row_ids": sorted(ex.id for ex in curated.eval),
                "training_config": result.config,
            }
            outcome.version, outcome.outcome = self.publish(
                alias, result.adapter_dir, gate, lineage
            )
        record["outcome"], record["version"] = outcome.outcome, outcome.version
        return outcome

    def publish(
        self, alias: str, adapter_dir: Path, gate: GateDecision, lineage: dict[str, Any]
    ) -> tuple[int, str]:
        """Copy into the adapter store, register with lineage, then promote (or canary)."""
        store = self.registry.store / alias / str(lineage["run_id"])
        shutil.copytree(adapter_dir, store, dirs_exist_ok=True)
        with Session(self.db) as session:
            try:
                version = self.registry.register(
                    session,
                    alias,
                    store,
                    metrics={"candidate": gate.candidate, "production": gate.production},
                    lineage=lineage,
                )
            except RegistryError as exc:
                shutil.rmtree(store, ignore_errors=True)
                raise RetrainError(f"could not register the candidate: {exc}") from exc
            current = self.registry.alias(session, alias)
            if self.settings.canary_share > 0 and current and current.production_version:
                self.registry.set_canary(
                    session, alias, version.version, self.settings.canary_share
                )
                return version.version, "canary"
            self.registry.promote(session, alias, version.version)
            return version.version, "promoted"


def _train_summary(result: TrainResult) -> dict[str, Any]:
    return {
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
