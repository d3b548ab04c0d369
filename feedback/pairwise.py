"""Pairwise review of shadow answers: a reviewer sees a production answer and its shadow's
answer to the same request side by side, in an order that hides which is which, and picks
the better one or a tie (optionally correcting it). The choices become preference data
(`prompt`, `chosen`, `rejected`, TRL's conversational DPO format) and the live win rate a
rollout is judged on.

The order is a hash of reviewer and interaction: stable across reloads, different between
reviewers, and recomputed at submit, so the page never carries which side is which.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from feedback.export import Export
from feedback.models import Interaction, PairwiseReview
from feedback.pii import Scrubber

SIDES = ("production", "shadow")


class PairError(ValueError):
    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pair:
    production: Interaction
    shadow: Interaction

    def answers(self, reviewer: str) -> list[str]:
        """The two answers as A and B, in this reviewer's order."""
        texts = [self.production.response_text or "", self.shadow.response_text or ""]
        return texts[::-1] if swapped(reviewer, self.production.id) else texts

    def shown(self, reviewer: str) -> dict[str, Any]:
        """What a reviewer is shown: the request and the two answers, nothing more."""
        return {
            "interaction_id": self.production.id,
            "alias": self.production.alias,
            "messages": self.production.conversation,
            "answers": self.answers(reviewer),
        }


def swapped(reviewer: str, interaction_id: str) -> bool:
    return hashlib.sha256(f"{reviewer}\0{interaction_id}".encode()).digest()[0] & 1 == 1


def next_pair(session: Session, reviewer: str, window: int = 200) -> Pair | None:
    """A production answer with a successful shadow that this reviewer has not judged."""
    judged = exists().where(
        col(PairwiseReview.interaction_id) == col(Interaction.shadow_of),
        col(PairwiseReview.reviewer_id) == reviewer,
    )
    shadows = list(
        session.exec(
            select(Interaction)
            .where(
                col(Interaction.shadow_of).is_not(None),
                Interaction.status_code == 200,
                col(Interaction.response_text).is_not(None),
                ~judged,
            )
            .order_by(col(Interaction.created_at).desc())
            .limit(window)
        )
    )
    random.shuffle(shadows)
    for shadow in shadows:
        production = session.get(Interaction, shadow.shadow_of)
        if production is not None and production.status_code == 200:
            return Pair(production, shadow)
    return None


def submit_pair(
    session: Session, reviewer: str, interaction_id: str, choice: str, correction: str | None
) -> tuple[PairwiseReview, Pair]:
    """`choice` is what the reviewer saw: "a", "b" or "tie"."""
    production = session.get(Interaction, interaction_id)
    shadow = session.exec(
        select(Interaction)
        .where(Interaction.shadow_of == interaction_id, Interaction.status_code == 200)
        .order_by(col(Interaction.created_at))
    ).first()
    if production is None or shadow is None:
        raise PairError(f"interaction {interaction_id} has no shadow answer to compare", 404)
    preferred = "tie"
    if choice != "tie":
        first, second = SIDES[::-1] if swapped(reviewer, interaction_id) else SIDES
        preferred = first if choice == "a" else second
    row = PairwiseReview(
        interaction_id=interaction_id,
        shadow_id=shadow.id,
        reviewer_id=reviewer,
        preferred=preferred,
        correction=(correction or "").strip() or None,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise PairError(f"you have judged interaction {interaction_id} already") from None
    session.refresh(row)
    return row, Pair(production, shadow)


def win_loss(session: Session, alias: str, candidate: int, baseline: int) -> tuple[int, int]:
    """The candidate's wins and losses (ties left out) against `baseline`, over every
    pairwise review of the alias's shadows."""
    production, shadow = aliased(Interaction), aliased(Interaction)
    votes = Counter(
        session.exec(
            select(PairwiseReview.preferred)
            .join(production, col(production.id) == PairwiseReview.interaction_id)
            .join(shadow, col(shadow.id) == PairwiseReview.shadow_id)
            .where(
                production.alias == alias,
                production.adapter_version == baseline,
                shadow.adapter_version == candidate,
            )
        ).all()
    )
    return votes["shadow"], votes["production"]


def export_preferences(
    session: Session, alias: str | None, pii_patterns: dict[str, str] | None = None
) -> Export:
    """One row per judged pair with a majority: the prompt, the preferred answer (or the
    latest correction) as `chosen`, the other as `rejected`. Ties are left out."""
    query = (
        select(PairwiseReview)
        .join(Interaction, col(Interaction.id) == PairwiseReview.interaction_id)
        .order_by(col(PairwiseReview.id))
    )
    if alias:
        query = query.where(Interaction.alias == alias)
    by_pair: dict[tuple[str, str], list[PairwiseReview]] = defaultdict(list)
    for review in session.exec(query):
        by_pair[(review.interaction_id, review.shadow_id)].append(review)
    wanted = {i for pair in by_pair for i in pair}
    found = session.exec(select(Interaction).where(col(Interaction.id).in_(wanted)))
    items = {i.id: i for i in found}
    scrubber = Scrubber(pii_patterns)
    rows, ids, skipped = [], [], Counter[str]()
    for (production_id, shadow_id), reviews in by_pair.items():
        production, shadow = items[production_id], items[shadow_id]
        votes = Counter(r.preferred for r in reviews if r.preferred != "tie")
        correction = next((r.correction for r in reversed(reviews) if r.correction), None)
        texts = {"production": production.response_text or "", "shadow": shadow.response_text or ""}
        if votes["production"] == votes["shadow"] and correction is None:
            skipped["tie"] += 1
            continue
        winner = "production" if votes["production"] >= votes["shadow"] else "shadow"
        loser = "shadow" if winner == "production" else "production"
        chosen = correction if correction is not None else texts[winner]
        rows.append({
            "prompt": scrubber.scrub_messages(production.conversation),
            "chosen": [{"role": "assistant", "content": scrubber.scrub(chosen)}],
            "rejected": [{"role": "assistant", "content": scrubber.scrub(texts[loser])}],
        })  # fmt: skip
        ids.append({"interaction_id": production_id, "shadow_id": shadow_id,
                    "chosen": "correction" if correction is not None else winner})  # fmt: skip
    export = Export(rows=rows, manifest={})
    export.manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "filters": {"alias": alias} if alias else {},
        "format": "preference JSONL (TRL DPO, conversational): prompt, chosen, rejected",
        "counts": {"rows": len(rows), "skipped": dict(skipped)},
        "pii_scrubbed": dict(sorted(scrubber.counts.items())),
        "row_ids": ids,
        "content_sha256": hashlib.sha256(export.jsonl().encode()).hexdigest(),
    }
    return export
