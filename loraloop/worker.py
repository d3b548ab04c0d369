"""Scheduled work: drift and retraining jobs per alias, on APScheduler.

Jobs live in the database (APScheduler's SQLAlchemy job store), so they survive restarts and
every process sees the same schedule. A scheduled job is a fresh start, like a CLI call:
`scheduled_drift` reads settings when it runs. Whatever the number of schedulers, a
per-target lock in the database lets one run per alias at a time; the others are recorded as
skipped.
"""

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from feedback.drift import DriftReport, DriftRunner, Embedder
from feedback.drift.runner import Progress
from feedback.jobs import JobBusy, run_job
from feedback.models import Interaction
from loraloop.builders import build_registry
from loraloop.db import create_db_engine
from loraloop.jobstore import open_job_store
from loraloop.retraining import RETRAIN_JOB, drift_retrain_hook
from loraloop.settings import Settings, get_settings
from serve.registry import RegistryError

log = logging.getLogger(__name__)
DRIFT_JOB = "loraloop.worker:scheduled_drift"


class DriftJobs:
    """Drift runs with what only the registry knows: targets, and the production version's
    training rows and age (for a training-set reference and counting new reviews)."""

    def __init__(self, db: Engine, settings: Settings, embedder: Embedder | None = None) -> None:
        self.db = db
        self.settings = settings
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
    try:
        for report in DriftJobs(db, settings).run_alias(alias, "cron"):
            log.info("drift %s: %s (%s)", alias, report.verdict, report.reason)
    finally:
        db.dispose()


class Worker:
    """Owns the scheduler: one cron job per alias, kept in line with the registry."""

    def __init__(
        self,
        db: Engine,
        settings: Settings,
        scheduler: BaseScheduler | None = None,
        jobs: DriftJobs | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.scheduler = scheduler or BackgroundScheduler(timezone="UTC")
        self.jobs = jobs or DriftJobs(db, settings)
        self._lock = threading.Lock()  # start and stop may come from different threads
        self._stopped = False

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
        """Start, or raise (a database that does not answer) leaving a fresh scheduler."""
        with self._lock:
            if not self._stopped:
                self._start()

    def _start(self) -> None:
        self.scheduler.configure(
            jobstores={"default": SQLAlchemyJobStore(engine=self.db), "local": MemoryJobStore()},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
        )
        try:
            self.scheduler.start()
            self.sync()
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
        log.info("scheduler started: drift on %r", self.settings.worker.drift_cron)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)


def scheduled_jobs(db: Engine) -> list[dict[str, Any]]:
    """The jobs in the database job store and when they next run (no scheduler started)."""
    store, _ = open_job_store(db)
    return [
        {"id": job.id, "name": job.name, "trigger": str(job.trigger), "next_run": job.next_run_time}
        for job in store.get_all_jobs()
    ]
