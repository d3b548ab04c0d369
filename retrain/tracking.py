"""Experiment tracking: each run's parameters, metrics and artifacts to MLflow, when a
tracking URI is configured: a local ``sqlite:///data/mlflow.db`` needs no server (MLflow 3
refuses its old file store). Artifacts go under the runs directory. Unset, runs are still
recorded in run.json and the job history; a tracking failure is logged, never fatal."""

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EXPERIMENT = "loraloop-retrain"
ARTIFACTS = ("run.json", "report.html", "loss.svg", "eval_predictions.jsonl")


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class Tracker:
    def __init__(self, uri: str | None, artifact_dir: Path | None = None) -> None:
        self.uri = uri
        self.artifact_dir = artifact_dir

    def log_run(self, record: dict[str, Any], run_dir: Path) -> str | None:
        """Log one finished (or failed) run; returns the MLflow run id."""
        if not self.uri:
            return None
        try:
            return self._log(record, run_dir)
        except Exception as exc:  # tracking is a side channel: never lose the run to it
            log.warning("MLflow logging failed (%s): %s", self.uri, exc)
            return None

    def _log(self, record: dict[str, Any], run_dir: Path) -> str:
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            location = self.artifact_dir.resolve().as_uri() if self.artifact_dir else None
            mlflow.create_experiment(EXPERIMENT, artifact_location=location)
        mlflow.set_experiment(EXPERIMENT)
        name = f"{record.get('alias')}-{record.get('run_id')}"
        with mlflow.start_run(run_name=name) as run:
            mlflow.set_tags(
                {
                    "alias": record.get("alias"),
                    "outcome": record.get("outcome"),
                    "baseline": record.get("baseline"),
                    "dataset_hash": record.get("dataset_hash"),
                    "version": record.get("version"),
                    "stop_rule": (record.get("train") or {}).get("stop_rule"),
                    "error": (record.get("error") or "")[:5000],
                }
            )
            config = flatten((record.get("train") or {}) | {"curation": record.get("curation", {})})
            mlflow.log_params({k: str(v)[:500] for k, v in config.items()})
            gate = record.get("gate") or {}
            metrics = {f"candidate_{k}": v for k, v in gate.get("candidate", {}).items()}
            metrics |= {f"production_{k}": v for k, v in gate.get("production", {}).items()}
            if metrics:
                mlflow.log_metrics(metrics)
            for step, loss in enumerate(record.get("losses", []), start=1):
                mlflow.log_metric("train_loss", loss, step=step)
            for step, loss in record.get("validation", []):
                mlflow.log_metric("validation_loss", loss, step=int(step))
            for ev in record.get("evaluations", []):
                for side in ("candidate", "production"):
                    mlflow.log_metrics({f"{ev['name']}_{side}_{k}": v for k, v in ev[side].items()})
            agreement = (record.get("judge") or {}).get("human_agreement") or {}
            if agreement.get("rate") is not None:
                mlflow.log_metric("judge_human_agreement", agreement["rate"])
            for i, trial in enumerate(record.get("trials", [])):
                self._trial(mlflow, name, i, trial)
            for artifact in ARTIFACTS:
                if (run_dir / artifact).is_file():
                    mlflow.log_artifact(str(run_dir / artifact))
            return str(run.info.run_id)

    @staticmethod
    def _trial(mlflow: Any, name: str, index: int, trial: dict[str, Any]) -> None:
        """One search trial as a nested run: its settings, validation curve and result."""
        with mlflow.start_run(run_name=f"{name}-trial-{index}", nested=True):
            mlflow.log_params({k: str(v) for k, v in trial["params"].items()})
            if trial.get("best_validation_loss") is not None:
                mlflow.log_metric("best_validation_loss", trial["best_validation_loss"])
            mlflow.log_metric("best_step", trial["best_step"])
            for step, loss in trial.get("validation", []):
                mlflow.log_metric("validation_loss", loss, step=int(step))
