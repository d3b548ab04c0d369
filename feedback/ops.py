"""Ops statistics: per alias and adapter version, per time window.

Volume, mean review score, thumbs-down rate, correction rate and latency percentiles,
computed from the system of record. Rows are read for the requested range only.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from sqlmodel import Session, col, select

from feedback.models import Interaction, UserFeedback
from feedback.stats import current_reviews

Window = Literal["hour", "day"]


class OpsRow(BaseModel):
    window_start: datetime
    alias: str | None
    adapter_version: int | None
    requests: int
    errors: int
    mean_review_score: float | None
    reviewed: int
    thumbs_down_rate: float | None
    rated: int
    correction_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class OpsStats(BaseModel):
    window: Window
    since: datetime
    until: datetime
    rows: list[OpsRow]


def _bucket(t: datetime, window: Window) -> datetime:
    t = t.astimezone(UTC)
    return (
        t.replace(minute=0, second=0, microsecond=0)
        if window == "hour"
        else t.replace(hour=0, minute=0, second=0, microsecond=0)
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) by linear interpolation between order statistics
    (numpy's default, the same as the inclusive method); None when empty."""
    if not values:
        return None
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile is in [0, 1], got {q}")
    return float(np.percentile(np.asarray(values, dtype=float), q * 100))


def ops_stats(
    session: Session,
    window: Window = "hour",
    since: datetime | None = None,
    until: datetime | None = None,
) -> OpsStats:
    until = until or datetime.now(UTC)
    since = since or until - (timedelta(days=1) if window == "hour" else timedelta(days=30))
    items = list(
        session.exec(
            select(Interaction).where(
                col(Interaction.created_at) >= since,
                col(Interaction.created_at) < until,
                col(Interaction.shadow_of).is_(None),
            )
        )
    )
    ids = {i.id for i in items}
    reviews: dict[str, list[int]] = defaultdict(list)
    corrected: set[str] = set()
    for review in current_reviews(session):
        if review.interaction_id in ids:
            reviews[review.interaction_id].append(review.score)
            if review.correction:
                corrected.add(review.interaction_id)
    thumbs: dict[str, bool] = {}
    for fb in session.exec(select(UserFeedback).where(col(UserFeedback.current).is_(True))):
        if fb.interaction_id in ids:
            thumbs[fb.interaction_id] = thumbs.get(fb.interaction_id, False) or fb.negative
    groups: dict[tuple[datetime, str | None, int | None], list[Interaction]] = defaultdict(list)
    for item in items:
        groups[(_bucket(item.created_at, window), item.alias, item.adapter_version)].append(item)
    rows = []
    for (start, alias, version), group in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or 0)
    ):
        scores = [s for i in group for s in reviews.get(i.id, [])]
        reviewed = [i for i in group if i.id in reviews]
        rated = [i for i in group if i.id in thumbs]
        latencies = sorted(i.latency_ms for i in group if i.latency_ms is not None)
        rows.append(
            OpsRow(
                window_start=start,
                alias=alias,
                adapter_version=version,
                requests=len(group),
                errors=sum(1 for i in group if i.status_code >= 400),
                mean_review_score=statistics.fmean(scores) if scores else None,
                reviewed=len(reviewed),
                thumbs_down_rate=(sum(thumbs[i.id] for i in rated) / len(rated)) if rated else None,
                rated=len(rated),
                correction_rate=(sum(i.id in corrected for i in reviewed) / len(reviewed))
                if reviewed
                else None,
                latency_p50_ms=percentile(latencies, 0.5),
                latency_p95_ms=percentile(latencies, 0.95),
            )
        )
    return OpsStats(window=window, since=since, until=until, rows=rows)


def last_hour(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per alias, over the last hour of client traffic: requests, error rate, p95 latency."""
    since = (now or datetime.now(UTC)) - timedelta(hours=1)
    rows = session.exec(
        select(Interaction.alias, Interaction.status_code, Interaction.latency_ms).where(
            col(Interaction.created_at) >= since, col(Interaction.shadow_of).is_(None)
        )
    ).all()
    groups: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
    for alias, status, latency in rows:
        groups[alias or "(base model)"].append((status, latency))
    out = []
    for alias, items in sorted(groups.items()):
        latencies = sorted(lat for status, lat in items if lat is not None and status < 400)
        errors = sum(1 for status, _ in items if status >= 500)
        out.append({"alias": alias, "requests": len(items), "errors": errors,
                    "error_rate": errors / len(items),
                    "p95_ms": percentile(latencies, 0.95)})  # fmt: skip
    return out
