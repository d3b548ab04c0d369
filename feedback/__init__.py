"""The system of record: interactions, feedback, reviews, datasets, drift."""

from feedback.capture import CaptureWriter
from feedback.models import Interaction
from feedback.settings import FeedbackSettings

__all__ = ["CaptureWriter", "FeedbackSettings", "Interaction"]
