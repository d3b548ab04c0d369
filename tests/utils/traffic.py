"""Synthetic support-desk traffic for drift tests and the drift benchmark.

Shifts are planted on purpose: a new topic, longer prompts, a drop in review scores.
"""

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from feedback.models import Interaction, Review, new_id

TOPICS = {
    "password": ["reset my password", "change my login email", "unlock my account"],
    "billing": ["get a refund for order", "update my credit card", "download my invoice"],
    "shipping": ["track my parcel", "change the delivery address", "report a late delivery"],
}
NEW_TOPIC = [
    "recover my crypto wallet seed",
    "move my bitcoin to cold storage",
    "stake tokens on the new chain",
]
OPENERS = [
    "Hi, how do I",
    "Hello, can you tell me how to",
    "Please help me",
    "I need to",
    "What is the way to",
]
DETAILS = [
    "today",
    "for my business account",
    "before friday",
    "as soon as possible",
    "from my phone",
    "on the website",
    "again",
]
ANSWERS = [
    "Sure. Open Settings, choose Account and follow the steps.",
    "You can do that from the Orders page; it takes about two minutes.",
    "I have opened a ticket for you; our team replies within a day.",
    "Go to Help, then Contact, and pick the topic that fits.",
]


def prompt(rng: random.Random, topic_pool: list[str], long: bool) -> str:
    text = f"{rng.choice(OPENERS)} {rng.choice(topic_pool)} {rng.choice(DETAILS)}?"
    if long:
        text += " " + " ".join(
            f"I already tried {rng.choice(DETAILS)} and it failed with code {rng.randint(1, 999)}."
            for _ in range(rng.randint(4, 7))
        )
    return text


def rows(
    n: int,
    start: datetime,
    end: datetime,
    alias: str = "support",
    seed: int = 0,
    new_topic: float = 0.0,
    long_prompts: bool = False,
    score_mean: float | None = None,
    template: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """n interactions spread over [start, end), and reviews when score_mean is given."""
    rng = random.Random(seed)
    base = [t for pool in TOPICS.values() for t in pool]
    span = (end - start).total_seconds()
    interactions, reviews = [], []
    for k in range(n):
        pool = NEW_TOPIC if rng.random() < new_topic else base
        text = prompt(rng, pool, long_prompts)
        answer = rng.choice(ANSWERS)
        iid = new_id()
        interactions.append(
            {
                "id": iid,
                "created_at": start + timedelta(seconds=span * k / n),
                "endpoint": "chat",
                "request": {"model": alias, "messages": [{"role": "user", "content": text}]},
                "rendered_messages": [
                    {"role": "system", "content": "You are a support agent."},
                    {"role": "user", "content": text},
                ],
                "template": template,
                "alias": alias,
                "adapter_version": 1,
                "response_text": answer,
                "finish_reason": "stop" if rng.random() < 0.95 else "length",
                "prompt_tokens": len(text) // 4,
                "completion_tokens": len(answer) // 4,
                "latency_ms": rng.gauss(400, 40),
                "ttft_ms": None,
                "status_code": 200,
            }
        )
        if score_mean is not None:
            score = min(5, max(1, round(rng.gauss(score_mean, 0.6))))
            reviews.append(
                {
                    "interaction_id": iid,
                    "reviewer_id": "r1",
                    "score": score,
                    "labels": [],
                    "created_at": start + timedelta(seconds=span * k / n),
                }
            )
    return interactions, reviews


def insert_traffic(
    db: Engine, interactions: list[dict[str, Any]], reviews: list[dict[str, Any]] | None = None
) -> None:
    with db.begin() as conn:
        for i in range(0, len(interactions), 5000):
            conn.execute(insert(Interaction), interactions[i : i + 5000])
        if reviews:
            conn.execute(insert(Review), reviews)
