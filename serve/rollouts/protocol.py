"""Request and response shapes of the rollout admin API (adapters and prompt templates)."""

from typing import Any

from pydantic import BaseModel, Field


class RolloutRequest(BaseModel):
    """Start a rollout of `version`; unset policy fields take LORALOOP_ROLLOUT_* values."""

    version: int = Field(ge=1)
    steps: list[float] | None = Field(default=None, description="Canary shares in percent.")
    min_requests: int | None = Field(default=None, ge=1, le=10_000_000)
    min_ratings: int | None = Field(default=None, ge=0, le=10_000_000)
    min_reviews: int | None = Field(default=None, ge=2, le=10_000_000)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    latency_tolerance: float | None = Field(default=None, ge=0, le=100)
    latency_slack_ms: float | None = Field(default=None, ge=0, le=1e7)
    max_step_s: float | None = Field(default=None, gt=0, le=1e9)


class RolloutDecisionOut(BaseModel):
    step: int
    share: float
    action: str
    reason: str
    comparisons: list[dict[str, Any]]
    created_at: Any


class RolloutOut(BaseModel):
    id: int
    alias: str
    version: int
    baseline_version: int
    policy: dict[str, Any]
    step: int
    state: str
    started_at: Any
    step_started_at: Any
    updated_at: Any
    last_check: dict[str, Any]
    started_by: str | None
    kind: str = "adapter"  # adapter: `alias` is an alias; template: a template's name
    decisions: list[RolloutDecisionOut] = Field(default_factory=list)
