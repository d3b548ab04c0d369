"""Golden sets: a fixed evaluation set per alias, pinned from reviewed interactions or
imported from a file.

An item is frozen when it enters the set (its conversation and the reviewed answer at that
time, PII scrubbed): later reviews do not move it, so scores of runs months apart are
scores on the same questions. The set's hash names its exact contents in every run record.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from feedback.export import ExportFilters, reviewed_answer
from feedback.models import GoldenItem, Interaction
from feedback.pii import Scrubber
from feedback.stats import current_reviews


class GoldenError(ValueError):
    """An item that cannot join a golden set; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GoldenRow:
    """One conversation to add from a file: the last turn is the reference answer."""

    key: str
    messages: list[dict[str, str]]
    template: str | None = None
    labels: tuple[str, ...] = ()


def golden_items(session: Session, alias: str) -> list[GoldenItem]:
    query = select(GoldenItem).where(GoldenItem.alias == alias)
    return list(session.exec(query.order_by(col(GoldenItem.key))))


def golden_hash(items: Iterable[GoldenItem]) -> str:
    """sha256 over keys and messages, order-independent: the set's version."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.key):
        digest.update(json.dumps([item.key, item.messages], sort_keys=True).encode())
    return digest.hexdigest()


def pin(
    session: Session,
    alias: str,
    interaction_id: str,
    pinned_by: str | None,
    min_score: float = 4,
    pii_patterns: dict[str, str] | None = None,
) -> GoldenItem:
    """Add a reviewed interaction: its answer is the latest correction, else its response
    when reviews scored it at least `min_score`."""
    item = session.get(Interaction, interaction_id)
    if item is None:
        raise GoldenError(f"interaction {interaction_id} does not exist", 404)
    reviews = current_reviews(session, interaction_id)
    if not reviews:
        raise GoldenError(f"interaction {interaction_id} has no review: review it before pinning")
    answer, _ = reviewed_answer(item, reviews, ExportFilters(min_score=min_score))
    if not answer:
        raise GoldenError(
            f"interaction {interaction_id} has no correction and its reviews score below "
            f"{min_score}: correct it before pinning"
        )
    scrubber = Scrubber(pii_patterns)
    answered = {"role": "assistant", "content": scrubber.scrub(answer)}
    messages = [*scrubber.scrub_messages(item.conversation), answered]
    labels = sorted({label for r in reviews for label in r.labels})
    row = GoldenItem(
        alias=alias,
        key=interaction_id,
        messages=messages,
        template=item.template,
        labels=labels,
        source="pinned",
        pinned_by=pinned_by,
    )
    return _insert(session, row)


def add_rows(session: Session, alias: str, rows: list[GoldenRow]) -> tuple[int, int]:
    """Import conversations (a file's lines); those already in the set are skipped.
    Returns (added, skipped)."""
    have = {i.key for i in golden_items(session, alias)}
    added = 0
    for row in rows:
        if row.key in have:
            continue
        session.add(
            GoldenItem(
                alias=alias,
                key=row.key,
                messages=row.messages,
                template=row.template,
                labels=sorted(row.labels),
                source="file",
            )
        )
        have.add(row.key)
        added += 1
    session.commit()
    return added, len(rows) - added


def unpin(session: Session, alias: str, key: str) -> bool:
    row = session.exec(
        select(GoldenItem).where(GoldenItem.alias == alias, GoldenItem.key == key)
    ).first()
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True


def describe(item: GoldenItem) -> dict[str, Any]:
    user = [m["content"] for m in item.messages if m["role"] == "user"]
    return {
        "key": item.key,
        "source": item.source,
        "template": item.template,
        "labels": item.labels,
        "question": user[-1] if user else "",
        "reference": item.messages[-1]["content"],
        "pinned_by": item.pinned_by,
        "created_at": item.created_at,
    }


def _insert(session: Session, row: GoldenItem) -> GoldenItem:
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise GoldenError(f"{row.key} is already in the golden set of {row.alias}", 409) from None
    session.refresh(row)
    return row
