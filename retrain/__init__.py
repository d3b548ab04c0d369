"""Retraining: dataset build, curation, LoRA/QLoRA training, the evaluation gate, publishing."""

from retrain.curate import Curated, curate
from retrain.dataset import DatasetError, Example, content_hash, from_feedback, read_seed
from retrain.evaluate import Evaluation, EvaluationError, Evaluator
from retrain.gate import GateDecision, decide
from retrain.metrics import METRICS, Metric, score
from retrain.pipeline import Reporter, Retrainer, RetrainError, RunOutcome
from retrain.settings import RetrainSettings
from retrain.tracking import Tracker
from retrain.train import Trainer, TrainResult

__all__ = [
    "METRICS",
    "Curated",
    "DatasetError",
    "Evaluation",
    "EvaluationError",
    "Evaluator",
    "Example",
    "GateDecision",
    "Metric",
    "Reporter",
    "RetrainError",
    "RetrainSettings",
    "Retrainer",
    "RunOutcome",
    "Tracker",
    "TrainResult",
    "Trainer",
    "content_hash",
    "curate",
    "decide",
    "from_feedback",
    "read_seed",
    "score",
]
