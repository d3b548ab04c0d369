"""The system of record: interactions, feedback, reviews, datasets, drift."""

from feedback.agreement import krippendorff_alpha
from feedback.api import build_router
from feedback.capture import CaptureWriter
from feedback.golden import GoldenError, GoldenRow, add_rows, golden_hash, golden_items, pin, unpin
from feedback.models import GoldenItem, Interaction, Review, ReviewLease, UserFeedback
from feedback.queue import QueueError, ReviewQueue
from feedback.settings import FeedbackSettings
from feedback.signals import Thresholds, export_judged, export_pairs

__all__ = [
    "CaptureWriter",
    "FeedbackSettings",
    "GoldenError",
    "GoldenItem",
    "GoldenRow",
    "Interaction",
    "QueueError",
    "Review",
    "ReviewLease",
    "ReviewQueue",
    "Thresholds",
    "UserFeedback",
    "add_rows",
    "build_router",
    "export_judged",
    "export_pairs",
    "golden_hash",
    "golden_items",
    "krippendorff_alpha",
    "pin",
    "unpin",
]
