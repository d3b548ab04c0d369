"""The whole loop on the embedded default model, with the support-desk scenario.

Lumen Lamps' support traffic goes through the gateway to the base model; simulated reviewers
correct each answer with the scenario's (through the review API, as people would); the
reviewed traffic becomes a curated dataset, a LoRA adapter is trained, evaluated against the
base model and promoted; then the held-out questions, never seen in training, are asked
again through the gateway, and Rouge-L before and after is printed.
"""

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from feedback.models import Interaction
from loraloop.retraining import RetrainJobs
from loraloop.settings import Settings
from retrain.evaluate import chat_many
from retrain.metrics import rouge_l, score
from retrain.pipeline import Reporter, RunOutcome

SCENARIO = Path(__file__).resolve().parents[1] / "retrain" / "scenarios" / "support_desk.jsonl"
# Tuned for two CPU cores (README, BENCHMARKS.md): short answers, one pass, a high rate.
RETRAIN_OVERRIDES: dict[str, Any] = {
    "min_examples": 100,
    "eval_fraction": 0.1,
    "max_epochs": 1,
    "min_steps": 0,
    "warmup_steps": 0,
    "learning_rate": 2e-3,
    "batch_size": 8,
    "max_seq_len": 96,
    "eval_max_tokens": 40,
}
ANSWER_TOKENS = 40
APPROVE_ABOVE = 0.8  # a simulated reviewer keeps answers this close to the scenario's
Progress = Callable[[str, int, int], None]


@dataclass
class Scenario:
    train: list[dict[str, Any]]
    heldout: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path = SCENARIO, limit: int | None = None) -> "Scenario":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        train = [r for r in rows if not r["heldout"]]
        heldout = [r for r in rows if r["heldout"]]
        if limit is not None:
            train, heldout = train[:limit], heldout[: max(1, limit // 10)]
        return cls(train, heldout)


def question(row: dict[str, Any]) -> str:
    return str(row["messages"][-2]["content"])


def answer(row: dict[str, Any]) -> str:
    return str(row["messages"][-1]["content"])


@contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    began = time.perf_counter()
    yield
    seconds[stage] = time.perf_counter() - began


@dataclass
class DemoResult:
    alias: str
    traffic: int
    corrected: int
    approved: int
    before: float
    after: float | None  # None: the gate kept the base model
    outcome: RunOutcome
    seconds: dict[str, float] = field(default_factory=dict)


class Demo:
    def __init__(
        self,
        db: Engine,
        settings: Settings,
        gateway_url: str,
        alias: str = "lumen",
        concurrency: int = 16,
    ) -> None:
        self.db = db
        self.settings = settings
        self.gateway = gateway_url.rstrip("/")
        self.alias = alias
        self.concurrency = concurrency

    def run(
        self, scenario: Scenario, progress: Progress, reporter: Reporter | None = None
    ) -> DemoResult:
        seconds: dict[str, float] = {}
        began = time.perf_counter()
        base = self.settings.model.name
        with timed(seconds, "traffic"):
            replies = self.ask(base, [question(r) for r in scenario.train], "traffic", progress)
            self.wait_captured([iid for iid, _ in replies])
        with timed(seconds, "review"):
            expected = {question(r): answer(r) for r in scenario.train}
            corrected, approved = self.review(expected, progress)
        with timed(seconds, "before"):
            before = self.heldout_rouge(base, scenario, "held-out, base", progress)
        with timed(seconds, "retrain"):
            outcome = RetrainJobs(self.db, self.settings).run(self.alias, "demo", True, reporter)
        after = None
        with timed(seconds, "after"):
            if outcome.version is not None:
                self.wait_version(outcome.version)
                after = self.heldout_rouge(self.alias, scenario, "held-out, adapter", progress)
        seconds["total"] = time.perf_counter() - began
        return DemoResult(
            self.alias, len(replies), corrected, approved, before, after, outcome, seconds
        )

    def heldout_rouge(
        self, model: str, scenario: Scenario, stage: str, progress: Progress
    ) -> float:
        replies = self.ask(model, [question(r) for r in scenario.heldout], stage, progress)
        texts = [text for _, text in replies]
        return score(texts, [answer(r) for r in scenario.heldout], ["rouge_l"])["rouge_l"]

    def ask(
        self, model: str, questions: list[str], stage: str, progress: Progress
    ) -> list[tuple[str, str]]:
        """(interaction id, answer) per question, through the gateway's chat API."""
        bodies = chat_many(
            self.gateway,
            model,
            [[{"role": "user", "content": q}] for q in questions],
            ANSWER_TOKENS,
            self.concurrency,
            progress=lambda done, total: progress(stage, done, total),
        )
        return [(b["interaction_id"], b["choices"][0]["message"]["content"] or "") for b in bodies]

    def verdict(self, body: dict[str, Any], gold: Any) -> dict[str, Any]:
        """A reviewer's review of one queued answer: a close answer is kept (score 5), any
        other corrected with the scenario's."""
        if rouge_l(body["response_text"] or "", gold) >= APPROVE_ABOVE:
            return {"score": 5}
        return {"score": 2, "labels": ["wrong"], "correction": gold}

    def review(self, expected: dict[str, Any], progress: Progress) -> tuple[int, int]:
        """Work the review queue like a reviewer: keep close answers, correct the rest."""
        corrected = approved = 0
        skipped: set[str] = set()
        with httpx.Client(base_url=self.gateway, timeout=60) as client:
            while True:
                item = client.get("/v1/reviews/next")
                item.raise_for_status()
                if item.status_code == 204:
                    break
                body = item.json()
                iid = body["interaction_id"]
                asked = next(
                    m["content"] for m in reversed(body["messages"]) if m["role"] == "user"
                )
                gold = expected.get(asked)
                if gold is None:  # not the demo's traffic: leave it for people
                    if iid in skipped:
                        break
                    skipped.add(iid)
                    client.post("/v1/reviews/skip", json={"interaction_id": iid})
                    continue
                review = {"interaction_id": iid} | self.verdict(body, gold)
                if any(key.startswith("correction") for key in review):
                    corrected += 1
                else:
                    approved += 1
                client.post("/v1/reviews", json=review).raise_for_status()
                progress("review", corrected + approved, len(expected))
        return corrected, approved

    def wait_captured(self, ids: list[str], timeout_s: float = 60) -> None:
        """Capture is asynchronous: reviewers can only see what has reached the database."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with Session(self.db) as session:
                stored = session.exec(
                    select(func.count()).where(col(Interaction.id).in_(ids))
                ).one()
            if stored == len(ids):
                return
            time.sleep(0.2)
        raise TimeoutError(f"only {stored} of {len(ids)} interactions were captured in time")

    def wait_version(self, version: int, timeout_s: float = 120) -> None:
        """The gateway picks a new version up on its next reconcile."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            models = httpx.get(f"{self.gateway}/v1/models", timeout=30).json()["data"]
            if f"{self.alias}@{version}" in {m["id"] for m in models}:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the gateway did not serve {self.alias}@{version} in time")
