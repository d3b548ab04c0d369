"""Pairs of answers that reviewers ordered: two reviewed responses to the same question
whose mean scores differ by at least one point. An LLM judge is checked against them
before its verdicts are trusted (retrain/judge.py)."""

import re
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

from sqlmodel import Session, col, select

from feedback.models import Interaction
from feedback.stats import current_reviews

SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Preference:
    question: str
    better: str
    worse: str
    gap: float  # mean score difference


def preference_pairs(session: Session, alias: str | None, limit: int) -> list[Preference]:
    """Up to `limit` pairs, widest score gaps first (the clearest human verdicts)."""
    scores: dict[str, list[int]] = defaultdict(list)
    for review in current_reviews(session):
        scores[review.interaction_id].append(review.score)
    if not scores or limit <= 0:
        return []
    query = select(Interaction).where(col(Interaction.id).in_(list(scores)))
    if alias is not None:
        query = query.where(Interaction.alias == alias)
    by_question: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for item in session.exec(query.order_by(col(Interaction.created_at))):
        users = [m for m in item.conversation if m.get("role") == "user"]
        if not users or not item.response_text:
            continue
        question = SPACE.sub(" ", str(users[-1].get("content", ""))).strip()
        mean = sum(scores[item.id]) / len(scores[item.id])
        by_question[question].append((mean, item.response_text))
    pairs = []
    for question, answers in by_question.items():
        for (s1, a1), (s2, a2) in combinations(answers, 2):
            if abs(s1 - s2) >= 1 and a1.strip() != a2.strip():
                better, worse = (a1, a2) if s1 > s2 else (a2, a1)
                pairs.append(Preference(question, better, worse, abs(s1 - s2)))
    pairs.sort(key=lambda p: (-p.gap, p.question))
    return pairs[:limit]
