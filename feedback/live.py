"""Live evidence on one adapter version, or one prompt template version: what its captured
traffic, its end users' ratings and its reviews say over a time window. Rollouts compare a
canary with production on it.

An interaction has one current rating (a changed mind replaces the first), and only the
latest revision of each review counts. Shadow answers (not seen by clients) are not
traffic and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from feedback.models import Interaction, Review, UserFeedback


@dataclass
class Traffic:
    requests: int = 0
    errors: int = 0  # 5xx: the engine or the gateway failed the client
    latencies_ms: list[float] = field(default_factory=list)
    rated: int = 0
    thumbs_down: int = 0
    review_scores: list[float] = field(default_factory=list)


def version_traffic(session: Session, alias: str, version: int, since: datetime) -> Traffic:
    """The version's requests through its alias's split since `since`. Pinned `alias@N`
    requests are someone choosing the version, not the split: left out, so that nobody
    can steer a rollout by sending chosen traffic to the canary."""
    return _traffic(
        session,
        (
            col(Interaction.alias) == alias,
            col(Interaction.adapter_version) == version,
            col(Interaction.created_at) >= since,
            col(Interaction.shadow_of).is_(None),
            col(Interaction.pinned).is_(False),
        ),
    )


def template_traffic(session: Session, name: str, version: int, since: datetime) -> Traffic:
    """The template version's requests through its release's split since `since`
    (requests naming `template_version` chose it: left out, as pinned adapters are)."""
    return _traffic(
        session,
        (
            col(Interaction.template) == name,
            col(Interaction.template_version) == version,
            col(Interaction.created_at) >= since,
            col(Interaction.shadow_of).is_(None),
            col(Interaction.template_pinned).is_(False),
        ),
    )


def _traffic(session: Session, served: tuple[Any, ...]) -> Traffic:
    rows = session.exec(select(Interaction.status_code, Interaction.latency_ms).where(*served))
    traffic = Traffic()
    for status, latency in rows:
        traffic.requests += 1
        if status >= 500:
            traffic.errors += 1
        elif status < 400 and latency is not None:
            traffic.latencies_ms.append(latency)
    ratings = session.exec(
        select(UserFeedback)
        .join(Interaction, col(Interaction.id) == UserFeedback.interaction_id)
        .where(*served, col(UserFeedback.current))
    ).all()
    traffic.rated = len(ratings)
    traffic.thumbs_down = sum(1 for r in ratings if r.negative)
    superseded = select(Review.supersedes_id).where(col(Review.supersedes_id).is_not(None))
    scores = session.exec(
        select(Review.score)
        .join(Interaction, col(Interaction.id) == Review.interaction_id)
        .where(*served, col(Review.id).not_in(superseded))
    ).all()
    traffic.review_scores = [float(s) for s in scores]
    return traffic
