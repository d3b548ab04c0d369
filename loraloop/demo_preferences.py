"""`loraloop demo --objective ...`: the loop learns from end users' thumbs, not only corrections.

Production has a bad habit: an adapter trained on the support desk's answers, `FLAWED_SHARE`
of them ending in a curt brush-off (`loraloop.flaws`), is registered and promoted through
the admin API and serves every question through the gateway. End users thumb what they saw
(down when the brush-off is there, `FLIP` of the ratings flipped) and a reviewer corrects
`CORRECTIONS` answers. A retraining run with the chosen objective learns from what was
captured, through the same pipeline as a scheduled run, and the held-out questions are asked
again: the flaw rate before and after is the demo's result.
"""

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loraloop.demo import RETRAIN_OVERRIDES, Demo, Progress, question, timed
from loraloop.flaws import Judgments, flaw_rate, good_answer, habits, judge
from loraloop.retraining import RetrainJobs
from retrain.metrics import score
from retrain.pipeline import Reporter, RunOutcome

FLAWED_SHARE = 0.7
FLIP = 0.12  # end users' label noise
CORRECTIONS = 20
# production's habit is learned well: three passes over its answers
PRODUCTION_OVERRIDES: dict[str, Any] = RETRAIN_OVERRIDES | {"max_epochs": 3}
# what the preference run may learn from is scarce by design: 20 corrections
PREFERENCE_OVERRIDES: dict[str, Any] = {"min_examples": 10, "min_pairs": 10}


@dataclass
class HeldOut:
    flaw_rate: float
    rouge_l: float


@dataclass
class PreferenceDemoResult:
    alias: str
    production_version: int
    judgments: Judgments
    before: HeldOut
    after: HeldOut | None  # None: the gate kept production
    outcome: RunOutcome
    seconds: dict[str, float] = field(default_factory=dict)


def promote_by_hand(client: httpx.Client, alias: str, path: Path) -> int:
    """Register adapter files in the store as the alias's next version and promote it,
    through the admin API, as an operator would; the version."""
    registered = client.post("/admin/adapters", json={"name": alias, "path": str(path)})
    registered.raise_for_status()
    version = int(registered.json()["version"])
    client.post(f"/admin/aliases/{alias}/promote", json={"version": version}).raise_for_status()
    return version


class PreferenceDemo(Demo):
    def run_flawed(
        self,
        train: list[dict[str, Any]],
        held: list[dict[str, Any]],
        progress: Progress,
        reporter: Reporter | None = None,
    ) -> PreferenceDemoResult:
        seconds: dict[str, float] = {}
        began = time.perf_counter()
        with timed(seconds, "production"):
            version = self.serve_production(train, reporter)
        with timed(seconds, "traffic"):
            replies = self.ask(self.alias, [question(r) for r in train], "traffic", progress)
            self.wait_captured([iid for iid, _ in replies])
        with timed(seconds, "before"):
            before = self.held_out(held, "held-out, production", progress)
        with timed(seconds, "judgments"), httpx.Client(base_url=self.gateway, timeout=60) as client:
            judgments = judge(client, train, replies, FLIP, CORRECTIONS)
        with timed(seconds, "retrain"):
            outcome = RetrainJobs(self.db, self.settings).run(self.alias, "demo", False, reporter)
        after = None
        with timed(seconds, "after"):
            if outcome.version is not None:
                self.wait_version(outcome.version)
                after = self.held_out(held, "held-out, retrained", progress)
        seconds["total"] = time.perf_counter() - began
        return PreferenceDemoResult(self.alias, version, judgments, before, after, outcome, seconds)

    def serve_production(self, train: list[dict[str, Any]], reporter: Reporter | None) -> int:
        """Train the flawed adapter, register it and promote it, as an operator would."""
        from retrain.train import Trainer  # torch: only when a demo trains

        settings = self.settings.retrain.model_copy(update=PRODUCTION_OVERRIDES)
        work = self.settings.retrain.runs_dir / self.alias / "production"
        shutil.rmtree(work, ignore_errors=True)
        bar = (
            (lambda d, t, loss: reporter.advance("production", d, t, f"loss {loss:.3f}"))
            if reporter
            else None
        )
        result = Trainer(self.settings.model.model_dir(), settings, work).train(
            habits(train, FLAWED_SHARE), bar
        )
        store = self.settings.serve.adapter_store / self.alias / "production"
        shutil.copytree(result.adapter_dir, store, dirs_exist_ok=True)
        with httpx.Client(base_url=self.gateway, timeout=60) as client:
            version = promote_by_hand(client, self.alias, store)
        self.wait_version(version)
        return version

    def held_out(self, held: list[dict[str, Any]], stage: str, progress: Progress) -> HeldOut:
        replies = self.ask(self.alias, [question(r) for r in held], stage, progress)
        answers = [text for _, text in replies]
        rouge = score(answers, [good_answer(r) for r in held], ["rouge_l"])["rouge_l"]
        return HeldOut(flaw_rate(answers, held), rouge)
