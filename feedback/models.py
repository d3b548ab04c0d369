"""Tables of the system of record.

`Interaction` is the capture record: one row per inference request, written by the
gateway's capture writer and the anchor for end-user feedback and reviews.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel


def new_id() -> str:
    return uuid.uuid4().hex


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
    template: str | None = Field(default=None, max_length=128, index=True)
    template_version: int | None = None
    alias: str | None = Field(default=None, max_length=128, index=True)
    adapter_version: int | None = None
    engine_model: str | None = Field(default=None, max_length=256)
    response_text: str | None = Field(default=None, sa_column=Column(Text))
    finish_reason: str | None = Field(default=None, max_length=32)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status_code: int = 200
    error: str | None = Field(default=None, sa_column=Column(Text))
