"""The system of record: interactions, feedback, reviews, datasets, drift."""

from feedback.models import Interaction

__all__ = ["Interaction"]
