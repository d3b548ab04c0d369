"""Tables of the system of record.

`Interaction` is the capture record: one row per inference request, written by the
gateway's capture writer and the anchor for end-user feedback and reviews.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def new_id() -> str:
    return uuid.uuid4().hex


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Interaction(SQLModel, table=True):
    """One request through the gateway, successful or not."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    client_key_id: str | None = Field(default=None, max_length=64)
    endpoint: str = Field(max_length=64)
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rendered_messages: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    rendered_tools: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    template: str | None = Field(default=None, max_length=128, index=True)
    template_version: int | None = None
    alias: str | None = Field(default=None, max_length=128, index=True)
    adapter_version: int | None = None
    engine_model: str | None = Field(default=None, max_length=256)
    engine_url: str | None = Field(default=None, max_length=256)  # the replica that answered
    response_text: str | None = Field(default=None, sa_column=Column(Text))
    # The assistant's tool calls, as OpenAI returns them ({id, type, function: {name,
    # arguments}}; arguments a JSON string, as the model wrote it): the answer of an agent
    # turn, where response_text is empty or a preamble.
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    finish_reason: str | None = Field(default=None, max_length=32)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status_code: int = 200
    error: str | None = Field(default=None, sa_column=Column(Text))
    # A shadow answer: the candidate's answer to the production interaction named here,
    # never sent to the client (serve/shadow.py).
    shadow_of: str | None = Field(default=None, max_length=32, index=True)
    # Asked for as `alias@N`: someone chose the version, the rollout's split did not, so
    # rollouts leave it out of their evidence. The same for a named `template_version`.
    pinned: bool = False
    template_pinned: bool = False
    # The W3C trace this request belonged to (the client's traceparent, or the gateway's own
    # span when tracing is on): joins the interaction, its feedback and reviews to traces.
    trace_id: str | None = Field(default=None, max_length=32, index=True)

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """What the model saw: the rendered template messages, else the request's own."""
        return self.rendered_messages or self.request.get("messages") or []

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        """The tools the model was offered: a template's, else the request's own."""
        given = self.request.get("tools") if isinstance(self.request, dict) else None
        return self.rendered_tools or (given if isinstance(given, list) else None)


class UserFeedback(SQLModel, table=True):
    """An end user's rating of one interaction. A second rating supersedes the first;
    both rows are kept, and only one per interaction is current."""

    __tablename__ = "user_feedback"

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: str = Field(foreign_key="interaction.id", index=True, max_length=32)
    end_user_id: str = Field(default="", max_length=128)
    rating: int
    scale: str = Field(max_length=8)  # "thumbs" (-1/1) or "stars" (1-5)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    current: bool = True

    @property
    def negative(self) -> bool:
        return self.rating < 0 if self.scale == "thumbs" else self.rating <= 2


class ReviewLease(SQLModel, table=True):
    """One reviewer holds one of an item's k review slots for a while.

    (interaction_id, slot) is unique, so two reviewers can never take the same slot; an
    expired or skipped lease gives its slot back (NULL), a submitted one keeps it.
    """

    __tablename__ = "review_lease"
    __table_args__ = (UniqueConstraint("interaction_id", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: str = Field(foreign_key="interaction.id", index=True, max_length=32)
    reviewer_id: str = Field(max_length=64, index=True)
    leased_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    slot: int | None = None
    state: str = Field(default="active", max_length=16)  # active, submitted, skipped, expired


class Review(SQLModel, table=True):
    """An immutable review. A revision is a new row that names the one it supersedes."""

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: str = Field(foreign_key="interaction.id", index=True, max_length=32)
    reviewer_id: str = Field(max_length=64, index=True)
    score: int
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    correction: str | None = Field(default=None, sa_column=Column(Text))
    # The tool calls the answer should have made (OpenAI's shape, arguments a JSON string):
    # set when a reviewer fixed a call's function or arguments, or added a call.
    correction_tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    supersedes_id: int | None = Field(default=None, foreign_key="review.id")


class PairwiseReview(SQLModel, table=True):
    """A reviewer's blind choice between a production answer and its shadow's answer to
    the same request: which is better, or a tie, optionally with a corrected answer."""

    __tablename__ = "pairwise_review"
    __table_args__ = (UniqueConstraint("interaction_id", "reviewer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    interaction_id: str = Field(foreign_key="interaction.id", index=True, max_length=32)
    shadow_id: str = Field(foreign_key="interaction.id", max_length=32)
    reviewer_id: str = Field(max_length=64)
    preferred: str = Field(max_length=16)  # production, shadow, tie
    correction: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)


class GoldenItem(SQLModel, table=True):
    """One conversation of an alias's fixed evaluation set: every retraining run of the
    alias is scored on the same items, so runs stay comparable over months.

    Frozen when pinned (the reviewed answer at that time, PII scrubbed) or imported from a
    file; `key` is the interaction id or "<file>:<line>", unique per alias.
    """

    __tablename__ = "golden_item"
    __table_args__ = (UniqueConstraint("alias", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    alias: str = Field(max_length=128, index=True)
    key: str = Field(max_length=256)
    messages: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    template: str | None = Field(default=None, max_length=128)
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=16)  # pinned, file
    pinned_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
