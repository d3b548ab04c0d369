"""Retraining: dataset build, curation, LoRA/QLoRA training with early stopping, the
evaluation gate (golden sets, slices, an LLM judge), publishing."""

from retrain.curate import Curated, curate
from retrain.dataset import DatasetError, Example, content_hash, from_feedback, read_seed
from retrain.evaluate import EvaluationError, Evaluator
from retrain.gate import GateDecision, SliceResult, decide, slices
from retrain.judge import Agreement, Judge, Pair
from retrain.metrics import METRICS, Metric, Pairwise, score, score_items
from retrain.pipeline import Reporter, Retrainer, RetrainError, RunOutcome, SetScores
from retrain.schedule import EarlyStopping, Plan, make_plan
from retrain.search import SearchError, Trial, train_best
from retrain.settings import RetrainSettings
from retrain.tracking import Tracker
from retrain.train import Trainer, TrainResult

__all__ = [
    "METRICS",
    "Agreement",
    "Curated",
    "DatasetError",
    "EarlyStopping",
    "EvaluationError",
    "Evaluator",
    "Example",
    "GateDecision",
    "Judge",
    "Metric",
    "Pair",
    "Pairwise",
    "Plan",
    "Reporter",
    "RetrainError",
    "RetrainSettings",
    "Retrainer",
    "RunOutcome",
    "SearchError",
    "SetScores",
    "SliceResult",
    "Tracker",
    "TrainResult",
    "Trainer",
    "Trial",
    "content_hash",
    "curate",
    "decide",
    "from_feedback",
    "make_plan",
    "read_seed",
    "score",
    "score_items",
    "slices",
    "train_best",
]
