"""The preference scenarios' world: a planted flaw users dislike, and the people who judge it.

Each row of `retrain/scenarios/<name>_flawed.jsonl` (written by `scripts/make_flawed.py`)
keeps its scenario's question and good answer and adds a flawed answer and the flaw: a
regex and whether the flaw is the pattern's presence or its absence. Because a program can
tell the two apart, the demo and the benchmark count flaws exactly rather than ask a judge.

The simulated people act only through the gateway's public APIs, as real ones would: end
users thumb what they saw (down when the flaw is there, with a share of ratings flipped, the
label noise of real thumbs), and a reviewer corrects a few flawed answers in the review
queue. Nothing is written into the database behind the platform's back.
"""

import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from retrain.dataset import Example

SCENARIOS = Path(__file__).resolve().parents[1] / "retrain" / "scenarios"
FLAWED_SCENARIOS = ("support_desk", "city_services")


def is_flawed(text: str, flaw: dict[str, str]) -> bool:
    found = re.search(flaw["pattern"], text) is not None
    return found if flaw["when"] == "present" else not found


def load_flawed(name: str) -> list[dict[str, Any]]:
    path = SCENARIOS / f"{name}_flawed.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def good_answer(row: dict[str, Any]) -> str:
    return str(row["messages"][-1]["content"])


def flaw_rate(answers: list[str], rows: list[dict[str, Any]]) -> float:
    flawed = sum(is_flawed(a, r["flaw"]) for a, r in zip(answers, rows, strict=True))
    return flawed / len(rows) if rows else 0.0


def habits(rows: list[dict[str, Any]], share: float, seed: int = 1) -> list[Example]:
    """Production's training data: `share` of the answers flawed, the rest good."""
    rng = random.Random(seed)
    examples = []
    for i, row in enumerate(rows):
        answer = row["flawed"] if rng.random() < share else good_answer(row)
        messages = (*row["messages"][:-1], {"role": "assistant", "content": answer})
        examples.append(Example(f"production:{i}", messages, "seed", row.get("template")))
    return examples


@dataclass
class Judgments:
    answers: int = 0
    flawed: int = 0
    thumbs_down: int = 0
    flipped: int = 0
    corrected: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def judge(
    client: httpx.Client,
    rows: list[dict[str, Any]],
    replies: list[tuple[str, str]],
    flip: float,
    corrections: int,
    seed: int = 2,
) -> Judgments:
    """End users rate every (interaction id, answer) in `replies`; a reviewer then works the
    review queue, correcting flawed answers with the good one until `corrections` are made
    (good answers are skipped: the reviewer has better things to do)."""
    rng = random.Random(seed)
    counts = Judgments(answers=len(replies))
    good: dict[str, tuple[str, bool]] = {}
    for row, (iid, answer) in zip(rows, replies, strict=True):
        flawed = is_flawed(answer, row["flaw"])
        flipped = rng.random() < flip
        up = (not flawed) != flipped
        counts.flawed += flawed
        counts.thumbs_down += not up
        counts.flipped += flipped
        good[iid] = (good_answer(row), flawed)
        rating = {"interaction_id": iid, "rating": "up" if up else "down"}
        client.post("/v1/feedback", json=rating).raise_for_status()
    seen: set[str] = set()
    while counts.corrected < corrections:
        item = client.get("/v1/reviews/next")
        item.raise_for_status()
        if item.status_code == 204:
            break
        iid = item.json()["interaction_id"]
        if iid in seen:  # the queue came round again: nothing left worth correcting
            break
        seen.add(iid)
        answer, flawed = good.get(iid, ("", False))
        if not flawed:
            client.post("/v1/reviews/skip", json={"interaction_id": iid}).raise_for_status()
            continue
        review = {"interaction_id": iid, "score": 2, "labels": ["tone"], "correction": answer}
        client.post("/v1/reviews", json=review).raise_for_status()
        counts.corrected += 1
    return counts
