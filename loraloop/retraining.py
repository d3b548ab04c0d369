"""Retraining as a job: one run per alias at a time, recorded whatever its outcome.

Runs start three ways: `loraloop retrain run` (manual), the worker's cron (per alias), and a
drift report that asks for one. The drift trigger queues a one-off job in the database job
store, so whichever scheduler wakes next (gateway or `loraloop worker`) runs it, and a
CLI drift run queues it too.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Engine

from feedback.drift import DriftReport
from feedback.jobs import JobBusy, run_job
from feedback.signals import Thresholds
from loraloop.builders import build_engine_manager, build_registry
from loraloop.db import create_db_engine
from loraloop.jobstore import open_job_store
from loraloop.settings import Settings, get_settings
from retrain.pipeline import Reporter, Retrainer, RunOutcome
from serve.rollouts import RolloutController
from serve.tracing import StageSpans, Tracing

log = logging.getLogger(__name__)
RETRAIN_JOB = "loraloop.retraining:scheduled_retrain"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class TracedReporter(Reporter):
    """A run's stages as child spans of its job span, and on to the caller's reporter."""

    def __init__(self, inner: Reporter, spans: StageSpans) -> None:
        self.inner = inner
        self.spans = spans

    def stage(self, name: str) -> None:
        self.spans.stage(name)
        self.inner.stage(name)

    def advance(self, stage: str, done: int, total: int, detail: str = "") -> None:
        self.inner.advance(stage, done, total, detail)

    def finish(self) -> None:
        self.spans.finish()
        self.inner.finish()


class RetrainJobs:
    def __init__(
        self,
        db: Engine,
        settings: Settings,
        engine_url: str | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.tracing = tracing or Tracing.from_settings(settings.tracing, "loraloop-worker")
        url = engine_url or build_engine_manager(settings).urls[0]
        self.retrainer = Retrainer(
            db,
            settings.retrain,
            build_registry(settings),
            settings.model.model_dir(),
            url,
            templates_dir=settings.serve.templates_dir,
            pii_patterns=settings.feedback.pii_patterns,
            rollouts=RolloutController(db, build_registry(settings), settings.rollout),
            engine_key=settings.engine.key(),
            thresholds=Thresholds.from_settings(settings.feedback),
        )

    def plan(self, alias: str, new: bool = False) -> RunOutcome:
        """What a run would do now (`--dry-run`): no job, no lock, nothing trained."""
        return self.retrainer.plan(alias, new)

    def run(
        self,
        alias: str,
        trigger: str = "manual",
        new: bool = False,
        reporter: Reporter | None = None,
    ) -> RunOutcome:
        """One run now; JobBusy when another run holds the alias."""
        self.retrainer.baseline(alias, new)  # a bad alias fails here, before a job is recorded
        run_id = new_run_id()
        with self.tracing.job("retrain", alias, trigger) as spans:
            spans.note(run_id=run_id)
            traced = TracedReporter(reporter or Reporter(), spans)
            run, outcome = run_job(
                self.db,
                "retrain",
                alias,
                trigger,
                lambda: self.retrainer.run(alias, run_id, new, traced),
                describe=lambda o: f"{o.run_id}: {o.summary()}",
                lock_ttl_s=self.settings.worker.retrain_lock_ttl_s,
            )
            if outcome is None:
                raise JobBusy(run.error or f"retraining of {alias} is already running")
            spans.note(outcome=outcome.outcome)
        return outcome


def scheduled_retrain(alias: str, trigger: str = "cron") -> None:
    """The job function kept in the job store (by reference)."""
    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    tracing = Tracing.from_settings(settings.tracing, "loraloop-worker")
    try:
        outcome = RetrainJobs(db, settings, tracing=tracing).run(alias, trigger)
        log.info("retrain %s: %s", alias, outcome.summary())
    except JobBusy as exc:
        log.info("%s", exc)
    finally:
        tracing.shutdown()
        db.dispose()


def queue_retrain(db: Engine, alias: str, trigger: str) -> str:
    """Add a run-now job to the database job store; a queued one is not queued twice."""
    store, scheduler = open_job_store(db)
    now = datetime.now(UTC)
    job = Job(
        scheduler,
        id=f"retrain-now:{alias}",
        func=RETRAIN_JOB,
        trigger=DateTrigger(now),
        executor="default",
        args=[alias, trigger],
        kwargs={},
        name=f"retrain {alias} ({trigger})",
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        next_run_time=now,
    )
    try:
        store.add_job(job)
    except ConflictingIdError:
        return "already queued"
    return "queued"


def drift_retrain_hook(db: Engine) -> Callable[[DriftReport], str]:
    """The DriftRunner's on_retrain hook (the drift policy decides when to call it)."""

    def request(report: DriftReport) -> str:
        return queue_retrain(db, report.alias, "drift")

    return request
