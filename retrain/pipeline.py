"""One retraining run for an alias: dataset, curation, training, the gate, publishing.

Everything up to the gate happens in the run's own directory; production changes only at
the very end, through the registry, and only when the gate passes. A failure at any step
leaves production as it was, and the run record (run.json, report.html, the job history)
says where and why. Both sides answer the run's held-out split and, when the alias has
one, its golden set; the gate decides on the golden set, so runs months apart compare.
"""

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session

from feedback.drift.embeddings import Embedder
from feedback.golden import golden_hash, golden_items
from feedback.preferences import preference_pairs
from feedback.signals import Thresholds
from retrain.compare import Comparison, check_arms, decide_run, token_counter
from retrain.curate import Curated, curate, require_examples
from retrain.dataset import DatasetError, Example, content_hash, from_feedback, read_seed
from retrain.evaluate import Evaluator
from retrain.fewshot import Shot
from retrain.gate import GateDecision, decide, slices
from retrain.judge import Judge, Pair, load_rubric
from retrain.metrics import METRICS, Pairwise, means
from retrain.objectives import Choice, choose
from retrain.outcome import Reporter, RunOutcome, train_summary
from retrain.preference_data import CuratedPreferences
from retrain.preference_stage import (
    STAGES,
    Preferences,
    gate_evidence,
    gate_prompts,
    gather,
    reference_examples,
    train_stage,
)
from retrain.prompt_release import ship_prompt
from retrain.report import write_report
from retrain.search import grid, train_best
from retrain.settings import RetrainSettings
from retrain.tracking import Tracker
from serve.registry import Registry, RegistryError
from serve.rollouts import RolloutController
from serve.store import content_hash as adapter_hash

if TYPE_CHECKING:
    from retrain.train import TrainResult

log = logging.getLogger(__name__)


class RetrainError(ValueError):
    """A run that cannot start or finish, worded for the user; production is untouched."""


class Retrainer:
    """The steps of a run, with their collaborators given (tests swap the engine URL)."""

    def __init__(
        self,
        db: Engine,
        settings: RetrainSettings,
        registry: Registry,
        model_dir: Path,
        engine_url: str,
        tracker: Tracker | None = None,
        templates_dir: Path | None = None,
        pii_patterns: dict[str, str] | None = None,
        rollouts: RolloutController | None = None,
        engine_key: str | None = None,
        thresholds: Thresholds | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.db = db
        self.thresholds = thresholds or Thresholds()
        self.engine_key = engine_key
        self.rollouts = rollouts
        self.settings = settings
        self.registry = registry
        self.model_dir = model_dir
        self.engine_url = engine_url
        self.templates_dir = templates_dir
        self.pii_patterns = pii_patterns
        self.evaluator = Evaluator(
            engine_url, settings.eval_max_tokens, settings.eval_concurrency, api_key=engine_key
        )
        self.tracker = tracker or Tracker(settings.mlflow_uri, settings.runs_dir / "mlflow")
        self.comparison = Comparison(
            self.evaluator,
            settings,
            registry.base_model,
            token_counter(model_dir),
            (embedder or Embedder()).encode,
        )

    def baseline(self, alias: str, new: bool) -> tuple[str, int | None]:
        """The engine name production answers under, and its version (None: base model)."""
        with Session(self.db) as session:
            row = self.registry.alias(session, alias)
            if row is None or row.production_version is None:
                if new:
                    return self.registry.base_model, None
                raise RetrainError(
                    f"alias '{alias}' has no production version to compare with; "
                    "--new trains its first version against the base model"
                )
            version = self.registry.version(session, alias, row.production_version)
            return version.engine_name, version.version

    def examples(self, alias: str, new: bool) -> list[Example]:
        with Session(self.db) as session:
            reviewed = from_feedback(session, None if new else alias, self.settings.min_score)
        seeds = [ex for path in self.settings.seed_files for ex in read_seed(path)]
        return reviewed + seeds

    def golden(self, alias: str) -> tuple[list[Example], str]:
        with Session(self.db) as session:
            items = golden_items(session, alias)
        examples = [
            Example(
                f"golden:{i.key}",
                tuple(i.messages),
                "golden",
                i.template,
                tuple(i.labels),
            )
            for i in items
        ]
        return examples, golden_hash(items)

    def judge(self) -> Judge | None:
        s = self.settings
        if not any(isinstance(METRICS.get(m), Pairwise) for m in s.metrics):
            return None
        rubric, source = load_rubric(s.judge_template, self.db, self.templates_dir)
        return Judge(
            s.judge_url or self.engine_url,
            s.judge_model or self.registry.base_model,
            rubric,
            s.judge_api_key.get_secret_value()
            if s.judge_api_key
            else (None if s.judge_url else self.engine_key),
            s.eval_concurrency,
            source=source,
        )

    def run(
        self, alias: str, run_id: str, new: bool = False, reporter: Reporter | None = None
    ) -> RunOutcome:
        report = reporter or Reporter()
        baseline, parent = self.baseline(alias, new)
        run_dir = self.settings.runs_dir / alias / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        outcome = RunOutcome(run_id, alias, baseline, run_dir)
        try:
            self._run(outcome, parent, report)
        except Exception as exc:
            outcome.outcome = "failed"
            outcome.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            report.finish()
            record = outcome.as_record()
            (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
            write_report(run_dir, record)
            self.tracker.log_run(record, run_dir)
        return outcome

    def plan(self, alias: str, new: bool = False) -> RunOutcome:
        """What a run would train on, and with which objective, without training: the
        dataset steps only. Nothing is written, no job recorded, production untouched; a
        run that would refuse its data refuses here the same way, in seconds."""
        baseline, parent = self.baseline(alias, new)
        grid(self.settings)
        run = RunOutcome("plan", alias, baseline, self.settings.runs_dir / alias, "planned")
        self._dataset(run, parent)
        return run

    def _run(self, run: RunOutcome, parent: int | None, report: Reporter) -> None:
        s = self.settings
        grid(s)  # a search too large fails before any work
        report.stage("dataset")
        curated, golden, stage_rows, choice = self._dataset(run, parent)
        judge = self.judge()  # a missing rubric fails before hours of training

        report.stage("train")
        result = self._train(run, curated, stage_rows, choice, report)

        report.stage("evaluate")
        held = curated.eval or reference_examples(stage_rows.eval if stage_rows else [])
        if not held:
            raise DatasetError("no held-out examples for the evaluation gate; add data")
        sets = [("held_out", held)] + ([("golden", golden)] if golden else [])
        candidate_name = f"candidate-{run.alias}-{run.run_id}"
        self.evaluator.load(candidate_name, self.candidate_location(run.alias, result.adapter_dir))
        try:
            scored = self.comparison.run(run, candidate_name, sets, curated.train, judge, report)
        finally:
            self.evaluator.unload(candidate_name)
        deciding, items, scores = scored[-1]
        evidence_against: list[str] = []
        if stage_rows is not None:
            run.preference["evidence"], evidence_against = gate_evidence(
                self.model_dir,
                result.adapter_dir,
                self.production_dir(run.alias, parent),
                stage_rows.eval,
                s.chat_template or "auto",
            )
        if judge is not None:
            with Session(self.db) as session:
                pairs = preference_pairs(session, run.alias, s.judge_agreement_pairs)
            agreement = judge.agreement([Pair(p.question, "", p.better, p.worse) for p in pairs])
            run.judge = {
                "url": judge.url,
                "model": judge.model,
                "rubric": judge.source,
                "human_agreement": agreement.as_dict(),
            }
        candidate, production = means(scores)
        run.gate = decide(
            candidate,
            production,
            s.primary_metric,
            s.margin,
            s.tolerance,
            deciding,
            slices(items, scores, s.slice_min_examples),
            s.slice_tolerance,
        )
        if run.retention.get("rejects"):
            evidence_against.append(str(run.retention["reason"]))
        if evidence_against:
            kept = [] if run.gate.promote else run.gate.reasons  # a pass's reason no longer holds
            run.gate = replace(run.gate, promote=False, reasons=kept + evidence_against)
        run.decision = decide_run(run, s.margin)
        run.outcome = "rejected"
        if s.ship_prompts and run.decision["ship"] == "prompt" and self.rollouts is not None:
            report.stage("publish")
            shots = [Shot(**shot) for shot in run.arms.get("template_shots") or []]
            run.prompt = ship_prompt(
                self.db, self.rollouts, curated.train, shots, self.registry.base_model, run.run_id
            )
            run.outcome = run.prompt["outcome"] or "rejected"
            return
        if run.gate.promote:
            report.stage("publish")
            lineage = {
                "parent_version": parent,
                "run_id": run.run_id,
                "base_model": self.registry.base_model,
                "dataset_hash": run.dataset_hash,
                "dataset_row_ids": sorted(ex.id for ex in curated.train),
                "eval_row_ids": sorted(ex.id for ex in curated.eval),
                "golden_hash": run.golden["hash"] if golden else None,
                "training_config": result.config,
                "objective": choice.objective,
            }
            if stage_rows is not None:
                lineage["preference_row_ids"] = sorted(p.id for p in stage_rows.train)
            run.version, run.outcome = self.publish(
                run.alias, result.adapter_dir, run.gate, lineage
            )

    def _dataset(
        self, run: RunOutcome, parent: int | None
    ) -> tuple[Curated, list[Example], CuratedPreferences | None, Choice]:
        """Chat examples and preferences, curated against the gate's prompts, and the
        objective to train with (asked for, or auto's pick with its reason). Each stage's
        data is checked here, so too few pairs fail before an hour of SFT, not after."""
        s = self.settings
        examples = self.examples(run.alias, new=parent is None)
        if not examples and s.objective == "sft":
            raise DatasetError("no reviewed interactions and no seed files: nothing to learn")
        golden, golden_digest = self.golden(run.alias)
        run.golden = {"items": len(golden), "hash": golden_digest}
        curated = curate(examples, s, self.pii_patterns, golden, require=False)
        prefs = Preferences()
        if s.objective != "sft":
            prompts = gate_prompts(curated.eval, golden)
            alias = None if parent is None else run.alias
            prefs = gather(self.db, alias, s, self.thresholds, prompts, self.pii_patterns)
            run.preference["data"] = prefs.report()
        choice = choose(s.objective, prefs.available(len(curated.train)), s)
        run.objective = choice.as_dict()
        if "sft" in choice.stages:
            require_examples(curated, s, first=len(choice.stages) > 1)
            check_arms(curated.train, s)
        kind = choice.stages[-1]
        stage_rows = prefs.for_stage(kind, s) if kind in STAGES else None
        run.curation = curated.report
        run.dataset_hash = content_hash(curated.train + curated.eval)
        run.train_examples, run.eval_examples = len(curated.train), len(curated.eval)
        return curated, golden, stage_rows, choice

    def _train(
        self,
        run: RunOutcome,
        curated: Curated,
        stage_rows: CuratedPreferences | None,
        choice: Choice,
        report: Reporter,
    ) -> "TrainResult":
        """SFT (with its search), then the preference stage on the same adapter."""
        s = self.settings
        result, start = None, None
        if "sft" in choice.stages:
            result, trials = train_best(
                self.model_dir,
                s,
                run.run_dir,
                curated.train,
                lambda i: (
                    lambda d, t, loss: report.advance(
                        "train",
                        d,
                        t,
                        f"loss {loss:.3f}" + (f" (trial {i + 1})" if s.search else ""),
                    )
                ),
            )
            run.trials = [t.summary() for t in trials]
            run.stages.append({"stage": "sft", **train_summary(result)})
            start = result.adapter_dir
        if stage_rows is not None:
            kind = choice.stages[-1]
            result = train_stage(
                kind,
                stage_rows,
                self.model_dir,
                s,
                run.run_dir,
                start,
                lambda d, t, loss: report.advance("train", d, t, f"{kind} loss {loss:.3f}"),
            )
            run.stages.append({"stage": kind, **train_summary(result), **result.preference})
        assert result is not None  # choose() always names at least one stage
        run.losses, run.validation = result.losses, result.validation
        run.train = train_summary(result)
        return result

    def production_dir(self, alias: str, version: int | None) -> Path | None:
        """Production's adapter files on this host (None: the base model answers)."""
        if version is None:
            return None
        with Session(self.db) as session:
            location = self.registry.version(session, alias, version).path
        return self.registry.objects.local(location)

    def candidate_location(self, alias: str, adapter_dir: Path) -> str:
        """Where the engine loads the candidate from: its run directory when engines share
        this disk, else the object store (engines on other hosts cannot read this one)."""
        return self.registry.objects.publish(
            adapter_dir, f"candidates/{alias}", adapter_hash(adapter_dir)
        )

    def publish(
        self, alias: str, adapter_dir: Path, gate: GateDecision, lineage: dict[str, Any]
    ) -> tuple[int, str]:
        """Copy into the adapter store, register with lineage, then promote (or make it the
        canary, or start a rollout that live traffic decides)."""
        store = self.registry.store / alias / str(lineage["run_id"])
        shutil.copytree(adapter_dir, store, dirs_exist_ok=True)
        with Session(self.db) as session:
            try:
                version = self.registry.register(
                    session,
                    alias,
                    store,
                    metrics={"candidate": gate.candidate, "production": gate.production},
                    lineage=lineage,
                )
            except RegistryError as exc:
                shutil.rmtree(store, ignore_errors=True)
                raise RetrainError(f"could not register the candidate: {exc}") from exc
            current = self.registry.alias(session, alias)
            if self.settings.rollout and self.rollouts and current and current.production_version:
                policy = self.rollouts.policy({})
                self.rollouts.start(session, alias, version.version, policy, "retrain")
                return version.version, "rollout"
            if self.settings.canary_share > 0 and current and current.production_version:
                self.registry.set_canary(
                    session, alias, version.version, self.settings.canary_share
                )
                return version.version, "canary"
            self.registry.promote(session, alias, version.version)
            return version.version, "promoted"
