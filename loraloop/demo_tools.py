"""`loraloop demo --scenario tools`: an agent's traffic through the whole loop.

The order desk's customers ask about their orders; every request carries the desk's tools
(look up, refund, cancel) and the base model answers with `tool_choice` auto, as an agent
backend would call it. Simulated reviewers keep the answers that make the scenario's calls
and correct the rest with the right calls (`correction_tool_calls`, as the review page
does), or with the right text where no tool was wanted. A run trains an adapter on the
reviewed traffic, the gate scores exact calls, and the held-out questions are asked again
through the gateway: tool-call accuracy before and after. Against a running gateway whose
alias already serves a version, the traffic goes to the alias and the run trains its next
version (only that alias's reviews), as a team's first retraining would.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from feedback.tool_calls import answer_text, calls_in
from loraloop.demo import Demo, Progress, Scenario, question, timed
from loraloop.retraining import RetrainJobs
from retrain.dataset import Example
from retrain.evaluate import chat_many
from retrain.pipeline import Reporter, RunOutcome
from retrain.tool_accuracy import ToolAccuracy, tool_accuracy
from serve.tables import Alias

TOOLS_SCENARIO = Path(__file__).resolve().parents[1] / "retrain" / "scenarios" / "order_desk.jsonl"
CALL_TOKENS = 64  # a call with its arguments is about 30 tokens; a text answer is cut here
# Tool prompts carry the schemas (about 400 tokens), so sequences are longer than chat's.
TOOLS_OVERRIDES: dict[str, Any] = {"max_seq_len": 640, "eval_max_tokens": CALL_TOKENS}


@dataclass
class ToolsDemoResult:
    alias: str
    traffic: int
    corrected: int
    approved: int
    production: str  # who answered before: the base model, or the alias's version
    before: ToolAccuracy
    after: ToolAccuracy | None  # None: the gate kept production
    outcome: RunOutcome
    seconds: dict[str, float] = field(default_factory=dict)


def reference(row: dict[str, Any]) -> Example:
    return Example(question(row), tuple(row["messages"]), "scenario", tools=tuple(row["tools"]))


class ToolsDemo(Demo):
    def run_tools(
        self, scenario: Scenario, progress: Progress, reporter: Reporter | None = None
    ) -> ToolsDemoResult:
        seconds: dict[str, float] = {}
        began = time.perf_counter()
        with Session(self.db) as session:
            served = session.get(Alias, self.alias)
        version = None if served is None else served.production_version
        new = version is None
        base = self.settings.model.name if new else self.alias
        production = base if new else f"{self.alias}@{version}"
        with timed(seconds, "traffic"):
            replies = self.ask_agent(base, scenario.train, "traffic", progress)
            self.wait_captured([iid for iid, _ in replies])
        with timed(seconds, "review"):
            expected = {question(r): r["messages"][-1] for r in scenario.train}
            corrected, approved = self.review(expected, progress)
        with timed(seconds, "before"):
            before = self.accuracy(base, scenario, "held-out, production", progress)
        with timed(seconds, "retrain"):
            outcome = RetrainJobs(self.db, self.settings).run(self.alias, "demo", new, reporter)
        after = None
        with timed(seconds, "after"):
            if outcome.version is not None:
                self.wait_version(outcome.version)
                after = self.accuracy(self.alias, scenario, "held-out, adapter", progress)
        seconds["total"] = time.perf_counter() - began
        return ToolsDemoResult(
            self.alias,
            len(replies),
            corrected,
            approved,
            production,
            before,
            after,
            outcome,
            seconds,
        )

    def verdict(self, body: dict[str, Any], gold: Any) -> dict[str, Any]:
        """Keep an answer that is exactly the scenario's (its calls, no stray text); else
        correct what differs: the calls, the text (a call wanted alone clears it). A text
        answer where no tool was wanted is reviewed as the chat demo does."""
        if not gold.get("tool_calls"):
            return super().verdict(body, gold["content"])
        made = answer_text(body["response_text"], body["tool_calls"])
        wanted = answer_text(gold.get("content"), gold["tool_calls"])
        if made == wanted:
            return {"score": 5}
        review = {"score": 1, "labels": ["wrong"]}
        if calls_in(made) != calls_in(wanted):
            review["correction_tool_calls"] = gold["tool_calls"]
        if (body["response_text"] or "") != (gold.get("content") or ""):
            review["correction"] = gold.get("content") or ""  # the call alone, no stray text
        return review

    def ask_agent(
        self, model: str, rows: list[dict[str, Any]], stage: str, progress: Progress
    ) -> list[tuple[str, str]]:
        """(interaction id, answer with its calls) per question, asked with its tools."""
        bodies = chat_many(
            self.gateway,
            model,
            [[{"role": "user", "content": question(r)}] for r in rows],
            CALL_TOKENS,
            self.concurrency,
            progress=lambda done, total: progress(stage, done, total),
            tools=[r["tools"] for r in rows],
        )
        answers = []
        for b in bodies:
            message = b["choices"][0]["message"]
            answers.append(
                (b["interaction_id"], answer_text(message["content"], message.get("tool_calls")))
            )
        return answers

    def accuracy(
        self, model: str, scenario: Scenario, stage: str, progress: Progress
    ) -> ToolAccuracy:
        replies = self.ask_agent(model, scenario.heldout, stage, progress)
        references = [reference(r) for r in scenario.heldout]
        return tool_accuracy([text for _, text in replies], references)
