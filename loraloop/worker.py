"""Scheduled work: drift and retraining jobs per alias, on APScheduler.

Jobs live in the database (APScheduler's SQLAlchemy job store), so they survive restarts and
every process sees the same schedule; a lease row elects the one worker that runs them. A
scheduled job is a fresh start, like a CLI call: `scheduled_drift` reads settings when it
runs. Whatever the number of schedulers, a per-target lock in the database lets one run per
alias at a time; the others are recorded as skipped. Running rollouts are judged by the
same leader, every `LORALOOP_ROLLOUT_CHECK_INTERVAL_S`, so one process decides each step.
"""

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from feedback.drift import DriftReport, DriftRunner, Embedder
from feedback.drift.runner import Progress
from feedback.jobs import JobBusy, run_job
from feedback.lease import Lease, default_owner
from feedback.models import Interaction
from loraloop.builders import build_registry
from loraloop.db import create_db_engine
from loraloop.jobstore import open_job_store
from loraloop.retraining import RETRAIN_JOB, drift_retrain_hook
from loraloop.settings import Settings, get_settings
from serve.registry import RegistryError
from serve.rollouts import RolloutController
from serve.tracing import Tracing

log = logging.getLogger(__name__)
DRIFT_JOB = "loraloop.worker:scheduled_drift"


class DriftJobs:
    """Drift runs with what only the registry knows: targets, and the production version's
    training rows and age (for a training-set reference and counting new reviews)."""

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        embedder: Embedder | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.tracing = tracing or Tracing.from_settings(settings.tracing, "loraloop-worker")
        self.runner = DriftRunner(db, settings.drift, embedder, on_retrain=drift_retrain_hook(db))
        self.registry = build_registry(settings)

    def aliases(self) -> list[str]:
        if self.settings.drift.aliases:
            return list(self.settings.drift.aliases)
        with Session(self.db) as session:
            return [a.name for a in self.registry.aliases(session)]

    def templates(self, alias: str) -> list[str]:
        with Session(self.db) as session:
            rows = session.exec(
                select(Interaction.template)
                .where(Interaction.alias == alias, col(Interaction.template).is_not(None))
                .distinct()
            )
            return sorted(t for t in rows if t)

    def production(self, alias: str) -> tuple[Sequence[str] | None, datetime | None]:
        with Session(self.db) as session:
            row = self.registry.alias(session, alias)
            if row is None or row.production_version is None:
                return None, None
            try:
                version = self.registry.version(session, alias, row.production_version)
            except RegistryError:
                return None, None
            return version.lineage.get("dataset_row_ids"), version.created_at

    def run(
        self,
        alias: str,
        template: str | None = None,
        trigger: str = "manual",
        progress: Progress | None = None,
    ) -> DriftReport:
        """One report now; JobBusy when another run holds the alias."""
        training_ids, since = self.production(alias)
        target = f"{alias}/{template}" if template else alias
        with self.tracing.job("drift", target, trigger) as job:
            run, report = run_job(
                self.db,
                "drift",
                target,
                trigger,
                lambda: self.runner.run(alias, template, trigger, training_ids, since, progress),
                describe=lambda r: f"report {r.id}: {r.verdict}",
                lock_ttl_s=self.settings.worker.lock_ttl_s,
            )
            if report is None:
                raise JobBusy(run.error or f"drift for {target} is already running")
            job.note(verdict=report.verdict, report_id=report.id)
        return report

    def run_alias(self, alias: str, trigger: str) -> list[DriftReport]:
        """The alias, then each of its templates when per-template reports are on."""
        reports = []
        for template in [
            None,
            *(self.templates(alias) if self.settings.drift.per_template else []),
        ]:
            try:
                reports.append(self.run(alias, template, trigger))
            except JobBusy as exc:
                log.info("%s", exc)
        return reports


def scheduled_drift(alias: str) -> None:
    """The job function stored in the job store (by reference, with the alias as argument)."""
    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    tracing = Tracing.from_settings(settings.tracing, "loraloop-worker")
    try:
        for report in DriftJobs(db, settings, tracing=tracing).run_alias(alias, "cron"):
            log.info("drift %s: %s (%s)", alias, report.verdict, report.reason)
    finally:
        tracing.shutdown()
        db.dispose()


class Worker:
    """Owns the scheduler: one cron job per alias, kept in line with the registry.

    Any number of workers (and gateways running one) may start; only the holder of the
    `scheduler` lease runs jobs, the others keep their scheduler paused and take over when
    the lease expires. `start` never blocks on, nor fails with, the database: a database
    that does not answer is retried with backoff, and said so in the log.
    """

    LEASE = "scheduler"

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        scheduler: BaseScheduler | None = None,
        jobs: DriftJobs | None = None,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.scheduler = scheduler or BackgroundScheduler(timezone="UTC")
        self.jobs = jobs or DriftJobs(db, settings, tracing=Tracing())  # lists aliases only
        self.rollouts = RolloutController(db, build_registry(settings), settings.rollout)
        self.lease = Lease(db, self.LEASE, owner or default_owner(), settings.worker.lease_ttl_s)
        self.active = False
        self._lock = threading.Lock()  # start and stop may come from different threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed_at = 0.0
        self._backoff = 1.0

    def sync(self) -> list[str]:
        """Add drift (and, with a retrain cron, retraining) jobs for each alias that lacks
        them; drop those of aliases gone."""
        aliases = self.jobs.aliases()
        w = self.settings.worker
        wanted = {f"drift:{a}": (DRIFT_JOB, a, w.drift_cron) for a in aliases}
        if w.retrain_cron:
            wanted |= {f"retrain:{a}": (RETRAIN_JOB, a, w.retrain_cron) for a in aliases}
        for job in self.scheduler.get_jobs(jobstore="default"):
            if job.id.split(":")[0] in {"drift", "retrain"} and job.id not in wanted:
                job.remove()
        for job_id, (func, alias, cron) in wanted.items():
            trigger = CronTrigger.from_crontab(cron, timezone="UTC")
            existing = self.scheduler.get_job(job_id, jobstore="default")
            if existing is None or str(existing.trigger) != str(trigger):
                self.scheduler.add_job(
                    func,
                    trigger,
                    args=[alias],
                    id=job_id,
                    name=f"{job_id.split(':')[0]} {alias}",
                    jobstore="default",
                    replace_existing=True,
                )
        return sorted(wanted)

    def start(self) -> None:
        """Contend for the lease now (so a lone worker is active on return), then keep
        contending in the background."""
        with self._lock:
            if self._stop.is_set() or self._thread is not None:
                return
            self._round()
            self._thread = threading.Thread(target=self._run, name="scheduler-lease", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.active:
            self.active = False
            try:
                self.lease.release()
            except SQLAlchemyError as exc:
                log.warning("could not release the scheduler lease (%s); it expires", exc)

    def _run(self) -> None:
        while not self._stop.wait(self._pause()):
            try:
                self._round()
            except Exception:  # keep contending: a dead elector would leave no scheduler
                log.exception("scheduler election round failed")

    def _pause(self) -> float:
        """Renew at a third of the lease; back off while the database fails, but a leader
        never waits past its next renewal."""
        renew = self.settings.worker.lease_ttl_s / 3
        pause = self._backoff if self._backoff > 1 else renew
        return min(pause, renew) if self.active else pause

    def _round(self) -> None:
        """One election round: take or renew the lease, and act on the outcome."""
        try:
            if not self.scheduler.running:
                self._start_paused()
            held = self.lease.acquire()
            if held:
                self._renewed_at = time.monotonic()
                if not self.active:
                    self._activate()
        except SQLAlchemyError as exc:
            self._backoff = min(self._backoff * 2, 30)
            log.warning(
                "worker: the database does not answer (%s); retrying in %.0f s",
                type(exc).__name__,
                self._pause(),
            )
            if self.active and time.monotonic() - self._renewed_at > self.lease.ttl_s / 2:
                self._deactivate("the lease could not be renewed")
            return
        self._backoff = 1.0
        if not held and self.active:
            self._deactivate("another worker holds the lease")

    def _start_paused(self) -> None:
        """The scheduler, started but paused: it runs jobs only while this is the leader."""
        self.scheduler.configure(
            jobstores={"default": SQLAlchemyJobStore(engine=self.db), "local": MemoryJobStore()},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
        )
        try:
            self.scheduler.start(paused=True)
        except Exception:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            self.scheduler = BackgroundScheduler(timezone="UTC")
            raise
        self.scheduler.add_job(
            self.sync,
            "interval",
            seconds=self.settings.worker.sync_interval_s,
            id="sync",
            jobstore="local",
            replace_existing=True,
        )
        self.scheduler.add_job(
            self.rollouts.tick,
            "interval",
            seconds=self.settings.rollout.check_interval_s,
            id="rollouts",
            jobstore="local",
            replace_existing=True,
        )

    def _activate(self) -> None:
        self.lease.mark_acquired()
        self.sync()
        self.scheduler.resume()
        self.active = True
        log.info(
            "scheduler active as %s (drift on %r)",
            self.lease.owner,
            self.settings.worker.drift_cron,
        )

    def _deactivate(self, why: str) -> None:
        self.scheduler.pause()
        self.active = False
        log.warning("scheduler paused: %s", why)


def scheduled_jobs(db: Engine) -> list[dict[str, Any]]:
    """The jobs in the database job store and when they next run (no scheduler started)."""
    store, _ = open_job_store(db)
    return [
        {"id": job.id, "name": job.name, "trigger": str(job.trigger), "next_run": job.next_run_time}
        for job in store.get_all_jobs()
    ]
