"""The review queue: which interaction a reviewer sees next, leases, and submissions.

Sampling policy (documented in the README):
1. Candidates are successful interactions with a response, that this reviewer has not
   reviewed or skipped, and that have a free review slot (k per item, settings).
2. Strata are (alias, template) pairs; the stratum with the fewest reviews so far goes
   first, so every alias and template gets reviewed, not only the busiest.
3. Within it, an item's weight is 1, plus `sample_negative_weight` when its current
   end-user rating is negative, plus `sample_new_version_weight` when its adapter version
   is younger than `sample_new_version_days`; one is drawn at random by weight.
4. The reviewer gets a lease on one of the item's k slots; (item, slot) is unique in the
   database, so two reviewers never take the same slot, and an expired lease frees it.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from feedback.models import Interaction, Review, ReviewLease, UserFeedback, utcnow
from feedback.settings import FeedbackSettings
from feedback.signals import same_text
from feedback.tool_calls import correction_problem


class QueueError(ValueError):
    """A review action was refused; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class ReviewQueue:
    def __init__(self, settings: FeedbackSettings, new_versions: set[tuple[str, int]]) -> None:
        self.settings = settings
        self.new_versions = new_versions

    def next(self, session: Session, reviewer: str) -> tuple[Interaction, ReviewLease] | None:
        """The reviewer's active lease if it has one, else a newly leased item."""
        now = utcnow()
        self._expire(session, now)
        held = session.exec(
            select(ReviewLease).where(
                ReviewLease.reviewer_id == reviewer, ReviewLease.state == "active"
            )
        ).first()
        if held is not None:
            item = session.get(Interaction, held.interaction_id)
            assert item is not None
            return item, held
        for _ in range(5):  # another reviewer may take the same slot first: draw again
            item = self._draw(session, reviewer)
            if item is None:
                return None
            lease = self._lease(session, item, reviewer, now)
            if lease is not None:
                return item, lease
        return None

    def submit(self, session: Session, reviewer: str, review: Review) -> Review:
        """Store a review of a leased item, or a revision of the reviewer's own review."""
        unknown = set(review.labels) - set(self.settings.review_labels)
        if unknown:
            raise QueueError(
                f"unknown labels {sorted(unknown)}; allowed: {self.settings.review_labels}", 422
            )
        item = session.get(Interaction, review.interaction_id)
        if review.correction is not None and not review.correction.strip():
            calls = review.correction_tool_calls
            if not (calls if calls is not None else (item.tool_calls if item else None)):
                raise QueueError(
                    "an empty correction clears the text of an answer that calls tools; an "
                    "answer without calls needs text (send no correction to approve it)",
                    422,
                )
            review.correction = ""
        if (
            review.correction
            and item is not None
            and same_text(review.correction, item.response_text or "")
        ):
            raise QueueError(
                "the correction repeats the answer: send the score without a correction to "
                "approve it (a correction must differ, it becomes a preference pair)",
                422,
            )
        if review.correction_tool_calls is not None and item is not None:
            problem = correction_problem(review.correction_tool_calls, item.tool_calls, item.tools)
            if problem is not None:
                raise QueueError(problem, 422)
        if review.supersedes_id is not None:
            previous = session.get(Review, review.supersedes_id)
            if (
                previous is None
                or previous.reviewer_id != reviewer
                or previous.interaction_id != review.interaction_id
            ):
                raise QueueError(f"review {review.supersedes_id} is not yours to revise", 403)
            session.add(review)
            session.commit()
            session.refresh(review)
            return review
        lease = session.exec(
            select(ReviewLease)
            .where(
                ReviewLease.interaction_id == review.interaction_id,
                ReviewLease.reviewer_id == reviewer,
            )
            .order_by(col(ReviewLease.leased_at).desc())
        ).first()
        if lease is None or lease.state in ("skipped", "submitted"):
            raise QueueError(
                f"interaction {review.interaction_id} is not leased to you: "
                "take items with GET /v1/reviews/next"
            )
        if lease.state == "expired" or lease.expires_at < utcnow():
            raise QueueError(
                f"your lease on {review.interaction_id} expired at "
                f"{lease.expires_at.isoformat()}; take the next item",
                410,
            )
        lease.state = "submitted"
        session.add(lease)
        session.add(review)
        session.commit()
        session.refresh(review)
        return review

    def skip(self, session: Session, reviewer: str, interaction_id: str) -> None:
        result = session.execute(
            update(ReviewLease)
            .where(
                col(ReviewLease.interaction_id) == interaction_id,
                col(ReviewLease.reviewer_id) == reviewer,
                col(ReviewLease.state) == "active",
            )
            .values(state="skipped", slot=None)
        )
        session.commit()
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise QueueError(f"interaction {interaction_id} is not leased to you")

    def _expire(self, session: Session, now: datetime) -> None:
        session.execute(
            update(ReviewLease)
            .where(col(ReviewLease.state) == "active", col(ReviewLease.expires_at) < now)
            .values(state="expired", slot=None)
        )
        session.commit()

    def _draw(self, session: Session, reviewer: str) -> Interaction | None:
        s = self.settings
        mine = exists().where(
            and_(
                ReviewLease.interaction_id == Interaction.id,
                ReviewLease.reviewer_id == reviewer,
                col(ReviewLease.state) != "expired",
            )
        )
        reviewed = exists().where(
            and_(Review.interaction_id == Interaction.id, Review.reviewer_id == reviewer)
        )
        candidates = list(
            session.exec(
                select(Interaction)
                .where(
                    Interaction.status_code == 200,
                    col(Interaction.response_text).is_not(None),
                    col(Interaction.shadow_of).is_(None),
                    ~mine,
                    ~reviewed,
                )
                .order_by(col(Interaction.created_at).desc())
                .limit(s.sample_window)
            )
        )
        if not candidates:
            return None
        ids = [c.id for c in candidates]
        taken = Counter(
            session.exec(
                select(ReviewLease.interaction_id).where(
                    col(ReviewLease.interaction_id).in_(ids), col(ReviewLease.slot).is_not(None)
                )
            )
        )
        open_items = [c for c in candidates if taken[c.id] < s.reviews_per_item]
        if not open_items:
            return None
        negative = {
            f.interaction_id
            for f in session.exec(
                select(UserFeedback).where(
                    col(UserFeedback.interaction_id).in_(ids),
                    col(UserFeedback.current).is_(True),
                )
            )
            if f.negative
        }
        done = self._reviews_per_stratum(session)
        stratum = min({_stratum(c) for c in open_items}, key=lambda k: (done[k], random.random()))
        pool = [c for c in open_items if _stratum(c) == stratum]
        weights = [
            1.0
            + s.sample_negative_weight * (c.id in negative)
            + s.sample_new_version_weight * ((c.alias, c.adapter_version) in self.new_versions)
            for c in pool
        ]
        return random.choices(pool, weights=weights)[0]

    def _lease(
        self, session: Session, item: Interaction, reviewer: str, now: datetime
    ) -> ReviewLease | None:
        used = set(
            session.exec(
                select(ReviewLease.slot).where(
                    ReviewLease.interaction_id == item.id, col(ReviewLease.slot).is_not(None)
                )
            )
        )
        free = [n for n in range(self.settings.reviews_per_item) if n not in used]
        if not free:
            return None
        lease = ReviewLease(
            interaction_id=item.id,
            reviewer_id=reviewer,
            slot=free[0],
            expires_at=now + timedelta(seconds=self.settings.review_lease_s),
        )
        session.add(lease)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        session.refresh(lease)
        return lease

    @staticmethod
    def _reviews_per_stratum(session: Session) -> Counter[tuple[Any, Any]]:
        rows = session.exec(
            select(Interaction.alias, Interaction.template)
            .join(Review, col(Review.interaction_id) == Interaction.id)
            .where(col(Review.supersedes_id).is_(None))
        )
        return Counter((alias, template) for alias, template in rows)


def _stratum(item: Interaction) -> tuple[str | None, str | None]:
    return item.alias, item.template


__all__ = ["QueueError", "ReviewQueue"]
