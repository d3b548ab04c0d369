"""Retraining: dataset build, curation, LoRA/QLoRA training with early stopping, the
evaluation gate (golden sets, slices, an LLM judge), publishing."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrain.compare import Comparison, Side
    from retrain.curate import Curated, curate
    from retrain.dataset import DatasetError, Example, content_hash, from_feedback, read_seed
    from retrain.decision import Verdict, decide_artifact
    from retrain.evaluate import EvaluationError, Evaluator
    from retrain.fewshot import Shot, ShotPicker
    from retrain.gate import GateDecision, SliceResult, decide, slices
    from retrain.judge import Agreement, Judge, Pair
    from retrain.metrics import METRICS, Metric, Pairwise, score, score_items
    from retrain.objectives import OBJECTIVES, Choice, choose
    from retrain.outcome import Reporter, RunOutcome, SetScores
    from retrain.pipeline import Retrainer, RetrainError
    from retrain.preference_data import (
        JudgedAnswer,
        PreferencePair,
        curate_preferences,
        read_preferences,
    )
    from retrain.preference_eval import LikelihoodScorer, PreferenceEvidence
    from retrain.preference_train import PreferenceTrainer
    from retrain.prompt_release import ship_prompt
    from retrain.retention import Retention, load_retention
    from retrain.schedule import EarlyStopping, Plan, make_plan
    from retrain.search import SearchError, Trial, train_best
    from retrain.settings import RetrainSettings
    from retrain.tracking import Tracker
    from retrain.train import Trainer, TrainResult

# Exported lazily: the CLI and the gateway import this package's light modules
# without paying for torch, peft or Evidently until a run needs them.
_EXPORTS = {
    "Comparison": "retrain.compare",
    "Side": "retrain.compare",
    "Verdict": "retrain.decision",
    "decide_artifact": "retrain.decision",
    "ShotPicker": "retrain.fewshot",
    "Shot": "retrain.fewshot",
    "Retention": "retrain.retention",
    "ship_prompt": "retrain.prompt_release",
    "load_retention": "retrain.retention",
    "Curated": "retrain.curate",
    "curate": "retrain.curate",
    "DatasetError": "retrain.dataset",
    "Example": "retrain.dataset",
    "content_hash": "retrain.dataset",
    "from_feedback": "retrain.dataset",
    "read_seed": "retrain.dataset",
    "EvaluationError": "retrain.evaluate",
    "Evaluator": "retrain.evaluate",
    "GateDecision": "retrain.gate",
    "SliceResult": "retrain.gate",
    "decide": "retrain.gate",
    "slices": "retrain.gate",
    "Agreement": "retrain.judge",
    "Judge": "retrain.judge",
    "Pair": "retrain.judge",
    "METRICS": "retrain.metrics",
    "Metric": "retrain.metrics",
    "Pairwise": "retrain.metrics",
    "score": "retrain.metrics",
    "score_items": "retrain.metrics",
    "Reporter": "retrain.outcome",
    "Retrainer": "retrain.pipeline",
    "RetrainError": "retrain.pipeline",
    "RunOutcome": "retrain.outcome",
    "SetScores": "retrain.outcome",
    "OBJECTIVES": "retrain.objectives",
    "Choice": "retrain.objectives",
    "choose": "retrain.objectives",
    "JudgedAnswer": "retrain.preference_data",
    "PreferencePair": "retrain.preference_data",
    "curate_preferences": "retrain.preference_data",
    "read_preferences": "retrain.preference_data",
    "LikelihoodScorer": "retrain.preference_eval",
    "PreferenceEvidence": "retrain.preference_eval",
    "PreferenceTrainer": "retrain.preference_train",
    "EarlyStopping": "retrain.schedule",
    "Plan": "retrain.schedule",
    "make_plan": "retrain.schedule",
    "SearchError": "retrain.search",
    "Trial": "retrain.search",
    "train_best": "retrain.search",
    "RetrainSettings": "retrain.settings",
    "Tracker": "retrain.tracking",
    "Trainer": "retrain.train",
    "TrainResult": "retrain.train",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = [
    "METRICS",
    "OBJECTIVES",
    "Agreement",
    "Choice",
    "Comparison",
    "Curated",
    "DatasetError",
    "EarlyStopping",
    "EvaluationError",
    "Evaluator",
    "Example",
    "GateDecision",
    "Judge",
    "JudgedAnswer",
    "LikelihoodScorer",
    "Metric",
    "Pair",
    "Pairwise",
    "Plan",
    "PreferenceEvidence",
    "PreferencePair",
    "PreferenceTrainer",
    "Reporter",
    "Retention",
    "RetrainError",
    "RetrainSettings",
    "Retrainer",
    "RunOutcome",
    "SearchError",
    "SetScores",
    "Shot",
    "ShotPicker",
    "Side",
    "SliceResult",
    "Tracker",
    "TrainResult",
    "Trainer",
    "Trial",
    "Verdict",
    "choose",
    "content_hash",
    "curate",
    "curate_preferences",
    "decide",
    "decide_artifact",
    "from_feedback",
    "load_retention",
    "make_plan",
    "read_preferences",
    "read_seed",
    "score",
    "score_items",
    "ship_prompt",
    "slices",
    "train_best",
]
