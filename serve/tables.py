"""Tables the online path owns: adapter versions, aliases, prompt templates, API keys."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class AdapterVersion(SQLModel, table=True):
    """An immutable LoRA adapter version. `name` is its lineage, which is also its alias."""

    __tablename__ = "adapter_version"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, index=True)
    version: int
    engine_name: str = Field(max_length=256, unique=True)
    path: str = Field(sa_column=Column(Text, nullable=False))
    base_model: str = Field(max_length=256)
    rank: int
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    lineage: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Alias(SQLModel, table=True):
    """What a request's `model: <name>` means right now: production plus optional canary."""

    name: str = Field(primary_key=True, max_length=128)
    production_version: int | None = None
    previous_version: int | None = None
    canary_version: int | None = None
    canary_share: float = 0.0
    # A shadow answers a share of production's requests off the request path; its
    # answers are captured (linked by `shadow_of`), never sent to the client.
    shadow_version: int | None = None
    shadow_share: float = 0.0
    revision: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class PromptTemplateVersion(SQLModel, table=True):
    """One version of a prompt template file; a changed file becomes a new version."""

    __tablename__ = "prompt_template_version"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, index=True)
    version: int
    content_hash: str = Field(max_length=64)
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # file: synced from prompt_templates/ (a file edit is a deploy); retrain: a run's
    # prompt, which serves only through a rollout (serve/template_releases.py)
    origin: str = Field(default="file", max_length=16)


class TemplateRelease(SQLModel, table=True):
    """Which version of a template unpinned requests get: production plus an optional
    canary share, as an alias does for adapter versions. No row: the latest version."""

    __tablename__ = "template_release"

    name: str = Field(primary_key=True, max_length=128)
    production_version: int | None = None
    canary_version: int | None = None
    canary_share: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """An API key, stored as a hash of its secret; the plain key is shown once at creation."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=16)
    secret_hash: str = Field(max_length=64)
    role: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    revoked: bool = False


class PageSession(SQLModel, table=True):
    """A browser's sign-in to the pages: the cookie holds a random token, this row its
    hash. It expires, and it ends with its key (revoked keys sign nobody in)."""

    __tablename__ = "page_session"

    id: str = Field(primary_key=True, max_length=64)  # SHA-256 of the cookie's token
    key_id: str = Field(foreign_key="api_key.id", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class Rollout(SQLModel, table=True):
    """A candidate version earning production step by step: its canary share follows
    `steps`; each step is judged on live traffic (serve/rollouts/). `kind` says what
    rolls out: an adapter version of the alias `alias`, or a version of the prompt
    template named `alias`."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="adapter", max_length=16)
    alias: str = Field(max_length=128, index=True)
    version: int
    baseline_version: int
    policy: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    step: int = 0  # index into policy["steps"]
    state: str = Field(default="running", max_length=16, index=True)
    started_at: datetime = Field(default_factory=utcnow)
    step_started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_check: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_by: str | None = Field(default=None, max_length=64)


class RolloutDecision(SQLModel, table=True):
    """Every step outcome of a rollout, with the comparisons it was decided on."""

    __tablename__ = "rollout_decision"

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int = Field(foreign_key="rollout.id", index=True)
    alias: str = Field(max_length=128)
    step: int
    share: float
    action: str = Field(max_length=16)  # start, advance, promote, rollback, abort
    reason: str = Field(sa_column=Column(Text, nullable=False))
    comparisons: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow)
