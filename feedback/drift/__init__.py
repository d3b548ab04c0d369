"""Drift monitoring: Evidently reports comparing a reference window of captured traffic
with the current one, stored, and able to trigger retraining."""

from feedback.drift.embeddings import Embedder
from feedback.drift.policy import Decision, decide
from feedback.drift.runner import DriftRunner
from feedback.drift.settings import DriftSettings
from feedback.drift.tables import DriftReport, DriftReportHtml

__all__ = [
    "Decision",
    "DriftReport",
    "DriftReportHtml",
    "DriftRunner",
    "DriftSettings",
    "Embedder",
    "decide",
]
