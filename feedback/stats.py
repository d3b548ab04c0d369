"""Review statistics: agreement per label and for scores, and per reviewer."""

from collections import defaultdict
from collections.abc import Iterable

from sqlmodel import Session, col, select

from feedback.agreement import interval, krippendorff_alpha, nominal
from feedback.models import Review, UserFeedback
from feedback.protocol import ReviewerAgreement, ReviewStats


def current_reviews(session: Session, interaction_id: str | None = None) -> list[Review]:
    """Each reviewer's latest word on each item (or on one): superseded reviews are left out."""
    query = select(Review).order_by(col(Review.id))
    if interaction_id is not None:
        query = query.where(Review.interaction_id == interaction_id)
    reviews = list(session.exec(query))
    superseded = {r.supersedes_id for r in reviews if r.supersedes_id is not None}
    return [r for r in reviews if r.id not in superseded]


def current_rating(session: Session, interaction_id: str) -> UserFeedback | None:
    """The end-user rating an item shows: the current one (the latest by its end user)."""
    return session.exec(
        select(UserFeedback).where(
            UserFeedback.interaction_id == interaction_id, col(UserFeedback.current).is_(True)
        )
    ).first()


def review_stats(session: Session, labels: list[str], flag_below: float) -> ReviewStats:
    reviews = current_reviews(session)
    by_item: dict[str, list[Review]] = defaultdict(list)
    for review in reviews:
        by_item[review.interaction_id].append(review)
    shared = {item: rs for item, rs in by_item.items() if len(rs) >= 2}
    score_alpha = krippendorff_alpha(([r.score for r in rs] for rs in shared.values()), interval)
    label_alpha = {
        label: krippendorff_alpha(
            ([float(label in r.labels) for r in rs] for rs in shared.values()), nominal
        )
        for label in labels
    }
    reviewers = []
    names = sorted({r.reviewer_id for r in reviews})
    for reviewer in names:
        # Agreement with the reviewer's best-matching colleague: an outlier agrees with
        # nobody, while two careful reviewers are not dragged down by a third.
        pairwise = [
            krippendorff_alpha(_pair_units(shared.values(), reviewer, other), interval)
            for other in names
            if other != reviewer
        ]
        known = [a for a in pairwise if a is not None]
        alpha = max(known) if known else None
        reviewers.append(
            ReviewerAgreement(
                reviewer_id=reviewer,
                reviews=sum(1 for r in reviews if r.reviewer_id == reviewer),
                shared_items=sum(
                    1 for rs in shared.values() if any(r.reviewer_id == reviewer for r in rs)
                ),
                score_alpha=alpha,
                flagged=alpha is not None and alpha < flag_below,
            )
        )
    return ReviewStats(
        reviews=len(reviews),
        items_reviewed=len(by_item),
        items_with_several_reviews=len(shared),
        score_alpha=score_alpha,
        label_alpha=label_alpha,
        reviewers=reviewers,
    )


def _pair_units(items: Iterable[list[Review]], a: str, b: str) -> list[list[float]]:
    units = []
    for rs in items:
        scores = {r.reviewer_id: r.score for r in rs}
        if a in scores and b in scores:
            units.append([float(scores[a]), float(scores[b])])
    return units
