"""Preference data from every stored judgment, not only corrections.

Two shapes, both TRL's conversational formats:

- **judged answers** (unpaired, binary; KTO): `prompt`, `completion`, `label`. The answer the
  user actually saw is desirable or undesirable. *A reviewer's word beats an end user's*: an
  interaction with current reviews takes its label from their mean score (desirable at
  `desirable_score` or above, undesirable at `undesirable_score` or below, left out in
  between) and a correction makes the answer undesirable and adds the correction as a
  desirable answer to the same prompt; only an unreviewed interaction takes its end user's
  current rating (thumbs; stars from `desirable_stars` / up to `undesirable_stars`).
- **pairs** (DPO): `prompt`, `chosen`, `rejected`. Every correction against the answer it
  corrected, then every pairwise-review majority (`feedback.pairwise.export_preferences`).

A correction identical to the answer (up to spacing) corrects nothing: it counts as the
reviewer's approval, never as a pair of equal answers. PII is scrubbed on the way out, as in
the chat export; the manifest names each row's interaction and source and states the balance,
so a training run can say what it learned from.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from feedback.export import Export, latest_calls, latest_correction
from feedback.models import Interaction, Review, UserFeedback
from feedback.pairwise import export_preferences
from feedback.pii import Scrubber
from feedback.settings import FeedbackSettings
from feedback.stats import current_reviews

SPACE = re.compile(r"\s+")
JUDGED_FORMAT = "judged answers JSONL (TRL KTO, conversational): prompt, completion, label"
PAIRS_FORMAT = "preference JSONL (TRL DPO, conversational): prompt, chosen, rejected"
TOOL_CALLS = "tool calls (preference rows carry text only)"


@dataclass(frozen=True)
class Thresholds:
    """When a judgment makes an answer desirable (True), undesirable (False) or neither."""

    desirable_score: float = 4
    undesirable_score: float = 2
    desirable_stars: int = 4
    undesirable_stars: int = 2

    @classmethod
    def from_settings(cls, settings: FeedbackSettings) -> Thresholds:
        return cls(
            settings.desirable_score,
            settings.undesirable_score,
            settings.desirable_stars,
            settings.undesirable_stars,
        )

    def of_reviews(self, scores: list[int]) -> bool | None:
        mean = sum(scores) / len(scores)
        if mean >= self.desirable_score:
            return True
        return False if mean <= self.undesirable_score else None

    def of_rating(self, rating: UserFeedback) -> bool | None:
        if rating.scale == "thumbs":
            return rating.rating > 0
        if rating.rating >= self.desirable_stars:
            return True
        return False if rating.rating <= self.undesirable_stars else None


def same_text(a: str, b: str) -> bool:
    return SPACE.sub(" ", a).strip() == SPACE.sub(" ", b).strip()


def calls_in_play(item: Interaction, reviews: list[Review]) -> bool:
    """The answer made tool calls, or a reviewer corrected its calls: preference rows carry
    text only, so such an answer would train as its text alone (often empty)."""
    return bool(item.tool_calls) or latest_calls(reviews) is not None


def correction_of(item: Interaction, reviews: list[Review]) -> str | None:
    """The latest correction, unless it repeats the answer (then the reviewer approved it)."""
    correction = latest_correction(reviews)
    if correction is None or same_text(correction, item.response_text or ""):
        return None
    return correction


def export_judged(
    session: Session,
    alias: str | None,
    thresholds: Thresholds,
    pii_patterns: dict[str, str] | None = None,
) -> Export:
    """Every judged answer of the alias as a KTO row (see the module's rule)."""
    reviews = _reviews_by_item(session)
    ratings = {
        r.interaction_id: r
        for r in session.exec(select(UserFeedback).where(col(UserFeedback.current).is_(True)))
    }
    scrubber = Scrubber(pii_patterns)
    rows: list[dict[str, Any]] = []
    ids: list[dict[str, Any]] = []
    sources: Counter[str] = Counter()
    left_out: Counter[str] = Counter()

    def add(item: Interaction, answer: str, label: bool, source: str) -> None:
        rows.append({
            "prompt": scrubber.scrub_messages(item.conversation),
            "completion": [{"role": "assistant", "content": scrubber.scrub(answer)}],
            "label": label,
        })  # fmt: skip
        ids.append({"interaction_id": item.id, "source": source, "label": label})
        sources[f"{source}:{'desirable' if label else 'undesirable'}"] += 1

    for item in _served(session, alias):
        answer, rating = item.response_text or "", ratings.get(item.id)
        item_reviews = reviews.get(item.id)
        if (item_reviews or rating is not None) and calls_in_play(item, item_reviews or []):
            left_out[TOOL_CALLS] += 1
            continue
        if item_reviews:
            label = thresholds.of_reviews([r.score for r in item_reviews])
            correction = correction_of(item, item_reviews)
            if correction is not None:
                label = False
                add(item, correction, True, "correction")
            if label is None:
                left_out["reviews between thresholds"] += 1
                continue
            if rating is not None and thresholds.of_rating(rating) not in (None, label):
                left_out["end user overruled by reviewers"] += 1
            add(item, answer, label, "review")
        elif rating is not None:
            label = thresholds.of_rating(rating)
            if label is None:
                left_out["stars between thresholds"] += 1
                continue
            add(item, answer, label, "end_user")
    desirable = sum(1 for r in rows if r["label"])
    counts = {
        "rows": len(rows),
        "desirable": desirable,
        "undesirable": len(rows) - desirable,
        "by_source": dict(sorted(sources.items())),
        "left_out": dict(sorted(left_out.items())),
    }
    return _finish(rows, ids, counts, alias, JUDGED_FORMAT, scrubber, thresholds)


def export_pairs(
    session: Session, alias: str | None, pii_patterns: dict[str, str] | None = None
) -> Export:
    """Corrections against the answers they corrected, then pairwise-review majorities."""
    reviews = _reviews_by_item(session)
    scrubber = Scrubber(pii_patterns)
    rows: list[dict[str, Any]] = []
    ids: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for item in _served(session, alias):
        if item.id not in reviews:
            continue
        if calls_in_play(item, reviews[item.id]):
            skipped[TOOL_CALLS] += 1
            continue
        correction = correction_of(item, reviews[item.id])
        if correction is None:
            if latest_correction(reviews[item.id]) is not None:
                skipped["correction equals the answer"] += 1
            continue
        rejected = scrubber.scrub(item.response_text or "")
        rows.append({
            "prompt": scrubber.scrub_messages(item.conversation),
            "chosen": [{"role": "assistant", "content": scrubber.scrub(correction)}],
            "rejected": [{"role": "assistant", "content": rejected}],
        })  # fmt: skip
        ids.append({"interaction_id": item.id, "source": "correction"})
    corrections = len(rows)
    pairwise = export_preferences(session, alias, pii_patterns)
    for row, row_id in zip(pairwise.rows, pairwise.manifest["row_ids"], strict=True):
        if same_text(row["chosen"][0]["content"], row["rejected"][0]["content"]):
            skipped["chosen equals rejected"] += 1
            continue
        rows.append(row)
        ids.append(row_id | {"source": "pairwise"})
    skipped.update(pairwise.manifest["counts"]["skipped"])
    for kind, n in pairwise.manifest["pii_scrubbed"].items():
        scrubber.counts[kind] += n
    counts = {
        "rows": len(rows),
        "by_source": {"correction": corrections, "pairwise": len(rows) - corrections},
        "skipped": dict(sorted(skipped.items())),
    }
    return _finish(rows, ids, counts, alias, PAIRS_FORMAT, scrubber, None)


def _reviews_by_item(session: Session) -> dict[str, list[Review]]:
    by_item: dict[str, list[Review]] = defaultdict(list)
    for review in current_reviews(session):
        by_item[review.interaction_id].append(review)
    return by_item


def _served(session: Session, alias: str | None) -> list[Interaction]:
    """Answers production served (not shadows, not errors), oldest first."""
    query = select(Interaction).where(
        Interaction.status_code == 200,
        col(Interaction.shadow_of).is_(None),
        col(Interaction.response_text).is_not(None),
    )
    if alias is not None:
        query = query.where(Interaction.alias == alias)
    return list(session.exec(query.order_by(col(Interaction.created_at), col(Interaction.id))))


def _finish(
    rows: list[dict[str, Any]],
    ids: list[dict[str, Any]],
    counts: dict[str, Any],
    alias: str | None,
    fmt: str,
    scrubber: Scrubber,
    thresholds: Thresholds | None,
) -> Export:
    export = Export(rows=rows, manifest={})
    filters: dict[str, Any] = {"alias": alias} if alias else {}
    if thresholds is not None:
        filters["thresholds"] = thresholds.__dict__
    export.manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "filters": filters,
        "format": fmt,
        "counts": counts,
        "pii_scrubbed": dict(sorted(scrubber.counts.items())),
        "row_ids": ids,
        "content_sha256": hashlib.sha256(export.jsonl().encode()).hexdigest(),
    }
    return export
