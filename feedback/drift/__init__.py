"""Drift monitoring: Evidently reports comparing a reference window of captured traffic
with the current one, stored, and able to trigger retraining."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feedback.drift.embeddings import Embedder
    from feedback.drift.policy import Decision, decide
    from feedback.drift.runner import DriftRunner
    from feedback.drift.settings import DriftSettings
    from feedback.drift.tables import DriftReport, DriftReportHtml

# Exported lazily: the CLI and the gateway import this package's light modules
# without paying for torch, peft or Evidently until a run needs them.
_EXPORTS = {
    "Embedder": "feedback.drift.embeddings",
    "Decision": "feedback.drift.policy",
    "decide": "feedback.drift.policy",
    "DriftRunner": "feedback.drift.runner",
    "DriftSettings": "feedback.drift.settings",
    "DriftReport": "feedback.drift.tables",
    "DriftReportHtml": "feedback.drift.tables",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = [
    "Decision",
    "DriftReport",
    "DriftReportHtml",
    "DriftRunner",
    "DriftSettings",
    "Embedder",
    "decide",
]
