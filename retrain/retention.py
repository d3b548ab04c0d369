"""The forgetting check: what the candidate adapter lost of what the base model knew.

A domain adapter can answer its domain better and still have lost general skills (it signs
every answer as the support desk, it stops doing sums, it ignores "answer in one word").
So every run asks a retention set of general prompts (`retention/general.jsonl`, written by
`scripts/make_retention.py`) of the base model, of production and of the candidate, greedy,
and compares each one's answers with the base model's own: the reference needs no labels
and suits any base model. The drop is 1 - Rouge-L against the base's answers (the base
scores 0); with `retention_judge` on, the pairwise judge's verdict against the base is
reported too. The gate rejects a candidate whose drop is over `retention_max_drop` and
larger than production's (a candidate that forgets no more than what is already serving
is no regression).
"""

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrain.dataset import DatasetError, Example
from retrain.judge import Judge, Pair
from retrain.metrics import rouge_l

DEFAULT_SET = Path(__file__).resolve().parent / "retention" / "general.jsonl"


def load_retention(path: Path) -> list[Example]:
    """The set's prompts as examples (no answer: the base model's is the reference).

    A missing or empty file is a DatasetError naming it: a run that was asked to check
    forgetting must not silently skip the check."""
    if not path.is_file():
        raise DatasetError(
            f"retention set {path} does not exist (LORALOOP_RETRAIN_RETENTION_SET; "
            "empty turns the forgetting check off)"
        )
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            messages = row["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("messages must be a non-empty list")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}:{number}: not a retention prompt ({exc})") from None
        key = str(row.get("id") or number)
        answer = {"role": "assistant", "content": ""}
        category = str(row.get("category") or "general")
        items.append(
            Example(f"retention:{key}", (*messages, answer), "retention", labels=(category,))
        )
    if not items:
        raise DatasetError(f"retention set {path} has no prompts")
    return items


@dataclass
class Retention:
    """Each side's answers to the retention set, compared with the base model's."""

    items: int
    drop: dict[str, float]  # side -> 1 - mean Rouge-L against the base's answers
    by_category: dict[str, dict[str, float]]  # category -> side -> drop
    judge: dict[str, float] = field(default_factory=dict)  # side -> the judge's share vs base
    max_drop: float = 0.0

    @property
    def rejects(self) -> bool:
        candidate, production = self.drop["candidate"], self.drop.get("production", 0.0)
        return candidate > self.max_drop and candidate > production

    def reason(self) -> str:
        candidate, production = self.drop["candidate"], self.drop.get("production", 0.0)
        return (
            f"retention drop {candidate:.3f} on {self.items} general prompts is over "
            f"{self.max_drop} and above production's {production:.3f}: the adapter forgot "
            "what the base model knew"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rejects": self.rejects, "reason": self.reason()}


def compare_to_base(
    items: list[Example],
    answers: dict[str, list[str]],
    max_drop: float,
    judge: Judge | None = None,
) -> Retention:
    """`answers` maps a side (base, production, candidate) to its answers, in item order."""
    base = answers["base"]
    sides = [side for side in answers if side != "base"]
    per_item = {
        side: [1 - rouge_l(a, b) for a, b in zip(answers[side], base, strict=True)]
        for side in sides
    }
    members: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(items):
        members[ex.labels[0] if ex.labels else "general"].append(i)
    by_category = {
        name: {side: round(sum(per_item[side][i] for i in idx) / len(idx), 4) for side in sides}
        for name, idx in sorted(members.items())
    }
    drop = {side: round(sum(v) / len(v), 4) for side, v in per_item.items()}
    shares = {}
    if judge is not None:
        for side in sides:
            if answers[side] is base:  # the base model serving: its own answers, a tie
                shares[side] = 0.5
                continue
            pairs = [
                Pair(ex.prompt[-1].get("content") or "", "", a, b)
                for ex, a, b in zip(items, answers[side], base, strict=True)
            ]
            scores = judge.compare(pairs)
            shares[side] = round(sum(scores) / len(scores), 4)
    return Retention(len(items), drop, by_category, shares, max_drop)
