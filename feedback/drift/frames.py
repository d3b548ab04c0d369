"""Windows of captured traffic as DataFrames of text and descriptors, ready for Evidently.

A window is counted in full but only a seeded random sample of its rows is loaded: drift
tests need a few thousand rows for their power, and loading 100,000 rows' JSON would
dominate the report's time. Only successful requests count: failures are an ops metric.
"""

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from feedback.models import Interaction, Review, UserFeedback
from feedback.tool_calls import call_problem

REFUSAL = re.compile(
    r"\b(I can(?:no|')t (?:help|assist|do|provide)|I(?:'m| am) (?:sorry|unable|not able)|"
    r"as an AI)\b",
    re.IGNORECASE,
)
NUMERIC = [
    "prompt_chars",
    "response_chars",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "ttft_ms",
    "user_rating",
    "review_score",
]
# Tool use: whether the request declared tools, which functions the answer called (in
# order, "+"-joined; "none"), and whether every call was valid against the declared schema.
CATEGORICAL = ["finish_reason", "refusal", "has_tools", "tools_called", "tool_args"]
TEXT = ["prompt", "response"]
CHUNK = 900


@dataclass(frozen=True)
class Window:
    """Which interactions a window holds: a time range, or explicit ids (a training set)."""

    alias: str
    template: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    ids: tuple[str, ...] | None = None

    def where(self) -> list[Any]:
        clauses: list[Any] = [
            Interaction.alias == self.alias,
            Interaction.status_code == 200,
            col(Interaction.shadow_of).is_(None),
        ]
        if self.template is not None:
            clauses.append(Interaction.template == self.template)
        if self.start is not None:
            clauses.append(col(Interaction.created_at) >= self.start)
        if self.end is not None:
            clauses.append(col(Interaction.created_at) < self.end)
        return clauses


def window_ids(session: Session, window: Window) -> list[str]:
    """Every id in the window (ids only: cheap even for 100,000 rows)."""
    if window.ids is not None:
        found: list[str] = []
        for chunk in _chunks(list(window.ids)):
            found += session.exec(
                select(Interaction.id).where(col(Interaction.id).in_(chunk), *window.where())
            ).all()
        return found
    return list(session.exec(select(Interaction.id).where(*window.where())))


def last_n_start(session: Session, alias: str, template: str | None, n: int) -> datetime | None:
    """When the alias's last `n` successful interactions began (None: there are none)."""
    clauses = Window(alias, template).where()
    times = session.exec(
        select(Interaction.created_at)
        .where(*clauses)
        .order_by(col(Interaction.created_at).desc())
        .limit(n)
    ).all()
    return times[-1] if times else None


def sample(ids: Sequence[str], size: int, seed: int) -> list[str]:
    if len(ids) <= size:
        return list(ids)
    return random.Random(seed).sample(list(ids), size)


def load_frame(session: Session, ids: Sequence[str]) -> pd.DataFrame:
    """Text columns and descriptors for the given interactions, one row each."""
    rows: list[dict[str, Any]] = []
    ratings: dict[str, list[float]] = {}
    scores: dict[str, list[int]] = {}
    for chunk in _chunks(list(ids)):
        for i in session.exec(select(Interaction).where(col(Interaction.id).in_(chunk))):
            rows.append(_describe(i))
        for fid, rating, scale in session.exec(
            select(UserFeedback.interaction_id, UserFeedback.rating, UserFeedback.scale).where(
                col(UserFeedback.interaction_id).in_(chunk), col(UserFeedback.current).is_(True)
            )
        ):
            ratings.setdefault(fid, []).append(normalise_rating(rating, scale))
        superseded = select(Review.supersedes_id).where(col(Review.supersedes_id).is_not(None))
        for rid, score in session.exec(
            select(Review.interaction_id, Review.score).where(
                col(Review.interaction_id).in_(chunk), col(Review.id).not_in(superseded)
            )
        ):
            scores.setdefault(rid, []).append(score)
    frame = pd.DataFrame(rows, columns=["id", *TEXT, *NUMERIC, *CATEGORICAL])
    frame["user_rating"] = frame["id"].map(lambda i: _mean(ratings.get(i)))
    frame["review_score"] = frame["id"].map(lambda i: _mean(scores.get(i)))
    return frame.astype({c: "float64" for c in NUMERIC})


def normalise_rating(rating: int, scale: str) -> float:
    """Thumbs (-1/1) and stars (1-5) on one 0..1 scale."""
    return (1.0 if rating > 0 else 0.0) if scale == "thumbs" else (rating - 1) / 4


def prompt_text(interaction: Interaction) -> str:
    """What the user asked: the last user message (or the completion prompt)."""
    for message in reversed(interaction.conversation):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content(message.get("content"))
    prompt = interaction.request.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def count_reviews_since(session: Session, alias: str, since: datetime | None) -> int:
    """Reviewed interactions of the alias created after `since`: new training signal."""
    query = (
        select(func.count(func.distinct(Review.interaction_id)))
        .join(Interaction, col(Interaction.id) == col(Review.interaction_id))
        .where(Interaction.alias == alias)
    )
    if since is not None:
        query = query.where(col(Review.created_at) > since)
    return int(session.exec(query).one())


def _describe(i: Interaction) -> dict[str, Any]:
    prompt, response = prompt_text(i), i.response_text or ""
    return {
        "id": i.id,
        "prompt": prompt,
        "response": response,
        "prompt_chars": len(prompt),
        "response_chars": len(response),
        "prompt_tokens": i.prompt_tokens,
        "completion_tokens": i.completion_tokens,
        "latency_ms": i.latency_ms,
        "ttft_ms": i.ttft_ms,
        "finish_reason": i.finish_reason or "none",
        "refusal": "yes" if REFUSAL.search(response) else "no",
        **tool_use(i),
    }


def tool_use(i: Interaction) -> dict[str, str]:
    tools = i.tools
    calls = i.tool_calls or []
    names = [str((c.get("function") or {}).get("name")) for c in calls if isinstance(c, dict)]
    valid = all(call_problem(c, tools) is None for c in calls)
    return {
        "has_tools": "yes" if tools else "no",
        "tools_called": "+".join(names) or "none",
        "tool_args": ("valid" if valid else "invalid") if calls else "no call",
    }


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _mean(values: list[float] | list[int] | None) -> float | None:
    return sum(values) / len(values) if values else None


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
