"""The release control plane: rollouts of adapter and prompt template versions, judged on
live evidence, and their admin API."""

from serve.rollouts.controller import (
    RolloutController,
    RolloutError,
    Verdict,
    decisions,
    judge,
    overview,
    recent,
)
from serve.rollouts.targets import KINDS, AdapterReleases, PromptReleases

__all__ = [
    "KINDS",
    "AdapterReleases",
    "PromptReleases",
    "RolloutController",
    "RolloutError",
    "Verdict",
    "decisions",
    "judge",
    "overview",
    "recent",
]
