"""The system of record: interactions, feedback, reviews, datasets, drift."""

from feedback.agreement import krippendorff_alpha
from feedback.api import build_router
from feedback.capture import CaptureWriter
from feedback.models import Interaction, Review, ReviewLease, UserFeedback
from feedback.queue import QueueError, ReviewQueue
from feedback.settings import FeedbackSettings

__all__ = [
    "CaptureWriter",
    "FeedbackSettings",
    "Interaction",
    "QueueError",
    "Review",
    "ReviewLease",
    "ReviewQueue",
    "UserFeedback",
    "build_router",
    "krippendorff_alpha",
]
