"""Dataset export: reviewed interactions as chat-format JSONL, with a manifest.

Each row is the conversation the model saw (rendered template messages, else the
request's messages) followed by the answer to learn: the reviewers' latest correction
when there is one, else the model's own response when reviews scored it high enough.
PII is scrubbed on the way out; the manifest records the filters, the row ids, a hash of
the content and what was scrubbed, so a training run can name exactly what it used.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from feedback.models import Interaction, Review
from feedback.pii import Scrubber
from feedback.stats import current_reviews


class ExportFilters(BaseModel):
    alias: str | None = None
    adapter_version: int | None = None
    template: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_score: float | None = Field(
        None,
        ge=1,
        le=5,
        description="Mean review score at least, for uncorrected responses (default 4); "
        "a correction is the gold answer whatever the score was.",
    )
    has_correction: bool | None = None
    max_score_spread: int | None = Field(
        None, ge=0, description="Agreement: highest minus lowest review score at most."
    )


class Export(BaseModel):
    rows: list[dict[str, Any]]
    manifest: dict[str, Any]

    def jsonl(self) -> str:
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self.rows)


def export_dataset(
    session: Session, filters: ExportFilters, pii_patterns: dict[str, str] | None = None
) -> Export:
    query = select(Interaction).where(
        Interaction.status_code == 200, col(Interaction.shadow_of).is_(None)
    )
    if filters.alias is not None:
        query = query.where(Interaction.alias == filters.alias)
    if filters.adapter_version is not None:
        query = query.where(Interaction.adapter_version == filters.adapter_version)
    if filters.template is not None:
        query = query.where(Interaction.template == filters.template)
    if filters.since is not None:
        query = query.where(col(Interaction.created_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(Interaction.created_at) < filters.until)
    reviews: dict[str, list[Review]] = defaultdict(list)
    for review in current_reviews(session):
        reviews[review.interaction_id].append(review)
    scrubber = Scrubber(pii_patterns)
    rows, ids, corrected = [], [], 0
    for item in session.exec(query.order_by(col(Interaction.created_at), col(Interaction.id))):
        answer, from_correction = reviewed_answer(item, reviews.get(item.id, []), filters)
        if answer is None:
            continue
        messages = scrubber.scrub_messages(item.conversation)
        turn: dict[str, Any] = {"role": "assistant", "content": scrubber.scrub(answer)}
        calls = latest_calls(reviews[item.id])
        if calls := (item.tool_calls if calls is None else calls):
            turn["tool_calls"] = [scrub_call(scrubber, call) for call in calls]
        messages.append(turn)
        labels = sorted({label for r in reviews[item.id] for label in r.labels})
        row = {"messages": messages, "template": item.template, "labels": labels}
        if tools := item.tools:
            row["tools"] = tools
        rows.append(row)
        ids.append(item.id)
        corrected += from_correction
    export = Export(rows=rows, manifest={})
    export.manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "filters": filters.model_dump(mode="json", exclude_none=True),
        "format": "chat JSONL: one {'messages': [...], 'template', 'labels'} per line, "
        "with 'tools' when the request declared them (the answer's turn then carries "
        "OpenAI 'tool_calls')",
        "counts": {
            "rows": len(rows),
            "from_corrections": corrected,
            "from_responses": len(rows) - corrected,
        },
        "pii_scrubbed": dict(sorted(scrubber.counts.items())),
        "row_ids": ids,
        "content_sha256": hashlib.sha256(export.jsonl().encode()).hexdigest(),
    }
    return export


def latest_correction(reviews: list[Review]) -> str | None:
    """The newest correction among an item's current reviews: reviewers' latest word. An
    empty one (stored only beside tool calls) is the call alone, without the answer's text."""
    return next((r.correction for r in newest_first(reviews) if r.correction is not None), None)


def latest_calls(reviews: list[Review]) -> list[dict[str, Any]] | None:
    """The newest corrected tool calls among an item's current reviews ([] is a correction
    too: the answer should have called nothing)."""
    calls = (r.correction_tool_calls for r in newest_first(reviews))
    return next((c for c in calls if c is not None), None)


def newest_first(reviews: list[Review]) -> list[Review]:
    return sorted(reviews, key=lambda r: (r.created_at, r.id or 0), reverse=True)


def scrub_call(scrubber: Scrubber, call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = scrubber.scrub(str(function.get("arguments") or "{}"))
    return {**call, "function": {**function, "arguments": arguments}}


def reviewed_answer(
    item: Interaction, reviews: list[Review], filters: ExportFilters
) -> tuple[str | None, bool]:
    """The answer to train on and whether it is a correction; None leaves the item out."""
    if not reviews:
        return None, False
    scores = [r.score for r in reviews]
    if (
        filters.max_score_spread is not None
        and max(scores) - min(scores) > filters.max_score_spread
    ):
        return None, False
    correction = latest_correction(reviews)
    corrected = correction is not None or latest_calls(reviews) is not None
    if filters.has_correction is True and not corrected:
        return None, False
    if filters.has_correction is False and corrected:
        return None, False
    if corrected:  # a tool-call correction keeps the answer's text unless that was corrected
        return correction if correction is not None else (item.response_text or ""), True
    mean = sum(scores) / len(scores)
    if filters.min_score is not None and mean < filters.min_score:
        return None, False
    if filters.min_score is None and mean < 4:
        return None, False  # an uncorrected response is a training target only if it was good
    return item.response_text, False
