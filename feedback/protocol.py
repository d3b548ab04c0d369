"""Request and response shapes of the feedback and review API."""

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class FeedbackRequest(BaseModel):
    interaction_id: str
    rating: Literal["up", "down"] | int = Field(description="Thumbs ('up'/'down') or stars (1-5).")
    comment: str | None = Field(default=None, max_length=10_000)
    end_user_id: str = Field(default="", max_length=128)


class FeedbackResponse(BaseModel):
    id: int
    interaction_id: str
    rating: int
    scale: str
    replaced_previous: bool


class ReviewItem(BaseModel):
    """What a reviewer needs to judge one interaction."""

    interaction_id: str
    lease_expires_at: datetime
    slot: int | None
    created_at: datetime
    messages: list[dict[str, Any]]
    response_text: str | None
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, description="The answer's tool calls (OpenAI's shape)."
    )
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="The tools the request declared."
    )
    template: str | None
    template_version: int | None
    alias: str | None
    adapter_version: int | None
    end_user_rating: dict[str, Any] | None
    labels: list[str]
    trace_id: str | None = Field(
        default=None, description="The request's W3C trace (its X-Trace-Id), to open in traces."
    )


class CallFunction(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(max_length=100_000, description="A JSON object, as a string.")

    @field_validator("arguments", mode="before")
    @classmethod
    def _as_json_text(cls, value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict) else value


class ToolCallIn(BaseModel):
    """A tool call as OpenAI writes it; `arguments` may also be given as an object."""

    id: str | None = Field(default=None, max_length=128)
    type: Literal["function"] = "function"
    function: CallFunction


class ReviewRequest(BaseModel):
    interaction_id: str
    score: int = Field(ge=1, le=5)
    labels: list[str] = Field(default_factory=list)
    correction: str | None = Field(default=None, max_length=100_000)
    correction_tool_calls: list[ToolCallIn] | None = Field(
        default=None,
        max_length=32,
        description="The tool calls the answer should have made; each must be valid against "
        "the request's tools, and together differ from the answer's.",
    )
    note: str | None = Field(default=None, max_length=10_000)
    supersedes_id: int | None = None


class SkipRequest(BaseModel):
    interaction_id: str


class ReviewOut(BaseModel):
    id: int
    interaction_id: str
    reviewer_id: str
    score: int
    labels: list[str]
    correction: str | None
    correction_tool_calls: list[dict[str, Any]] | None = None
    note: str | None
    created_at: datetime
    supersedes_id: int | None


class ReviewerAgreement(BaseModel):
    reviewer_id: str
    reviews: int
    shared_items: int
    score_alpha: float | None
    flagged: bool


class ReviewStats(BaseModel):
    reviews: int
    items_reviewed: int
    items_with_several_reviews: int
    score_alpha: float | None
    label_alpha: dict[str, float | None]
    reviewers: list[ReviewerAgreement]


class GoldenPinRequest(BaseModel):
    interaction_id: str = Field(max_length=32)


class GoldenItemOut(BaseModel):
    """One item of an alias's golden set: the question and the frozen reference answer."""

    key: str
    source: str
    template: str | None
    labels: list[str]
    question: str
    reference: str
    pinned_by: str | None
    created_at: datetime


class GoldenSet(BaseModel):
    alias: str
    hash: str
    items: list[GoldenItemOut]


class PairItem(BaseModel):
    """A production answer and its shadow's, as A and B in an order that hides which."""

    interaction_id: str
    alias: str | None
    messages: list[dict[str, Any]]
    answers: list[str] = Field(min_length=2, max_length=2)


class PairRequest(BaseModel):
    interaction_id: str = Field(max_length=32)
    preferred: Literal["a", "b", "tie"]
    correction: str | None = Field(default=None, max_length=100_000)


class PairResult(BaseModel):
    """What the choice meant, shown after submitting: versions are revealed then."""

    preferred: Literal["production", "shadow", "tie"]
    production_version: int | None
    shadow_version: int | None


class PreferenceExportRequest(BaseModel):
    alias: str | None = Field(default=None, max_length=128)
    kind: Literal["pairs", "judged"] = Field(
        "pairs",
        description="pairs: corrections and pairwise choices as DPO rows; judged: every "
        "reviewed or rated answer, desirable or not, as KTO rows.",
    )
