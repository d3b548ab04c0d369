"""The feedback loop's state on /metrics, read from the database when scraped: what the
alerting rules need about the worker and its jobs (the lease, the last drift and retraining
runs per alias, the latest drift verdict) and about rollouts.

Every gateway reads the same rows, so any one of them answers for the loop; reads are
cached for `ttl_s` so that several scrapers cost one set of queries, and a database that
does not answer makes the scrape omit these series rather than fail it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from feedback.drift.tables import DriftReport
from feedback.jobs import JobRun
from feedback.lease import LeaderLease
from feedback.models import aware, utcnow
from serve.tables import Rollout

log = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"  # loraloop/worker.py's Worker.LEASE


def _epoch(moment: datetime) -> float:
    return aware(moment).timestamp()


class LoopCollector:
    def __init__(self, db: Engine, ttl_s: float = 10.0) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._cached: list[Metric] = []
        self._read_at = -ttl_s

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        if now - self._read_at >= self.ttl_s:
            try:
                self._cached = self._read()
            except SQLAlchemyError as exc:
                log.warning("loop metrics not read: %s", exc)
                self._cached = []
            self._read_at = now
        yield from self._cached

    def _read(self) -> list[Metric]:
        with Session(self.db) as session:
            return [
                self._lease(session),
                *self._jobs(session),
                self._drift(session),
                self._rollouts(session),
            ]

    def _lease(self, session: Session) -> Metric:
        family = GaugeMetricFamily(
            "loraloop_worker_lease_expires_in_seconds",
            "Seconds until the scheduler lease expires (negative: no worker holds it)",
        )
        lease = session.get(LeaderLease, SCHEDULER_LEASE)
        if lease is not None:
            family.add_metric([], _epoch(lease.expires_at) - utcnow().timestamp())
        return family

    def _jobs(self, session: Session) -> list[Metric]:
        families = []
        for outcome, statuses in (("success", ("succeeded", "skipped")), ("failure", ("failed",))):
            family = GaugeMetricFamily(
                f"loraloop_job_last_{outcome}_timestamp_seconds",
                f"When the last run of each scheduled job that ended {' or '.join(statuses)} "
                "ended, per target (skipped: nothing to do, not an error)",
                labels=["job", "target"],
            )
            query = (
                select(JobRun.job, JobRun.target, func.max(JobRun.finished_at))
                .where(col(JobRun.status).in_(statuses), col(JobRun.finished_at).is_not(None))
                .group_by(col(JobRun.job), col(JobRun.target))
            )
            for job, target, finished in session.exec(query):
                family.add_metric([job, target], _epoch(finished))
            families.append(family)
        return families

    def _drift(self, session: Session) -> Metric:
        family = GaugeMetricFamily(
            "loraloop_drift_detected",
            "1 when the latest drift report of the alias (and template) found drift",
            labels=["alias", "template"],
        )
        latest = (
            select(DriftReport.alias, DriftReport.template, func.max(DriftReport.id))
            .where(col(DriftReport.verdict).in_(("drift", "no_drift")))
            .group_by(col(DriftReport.alias), col(DriftReport.template))
        )
        ids = [row[2] for row in session.exec(latest)]
        if ids:
            rows = session.exec(select(DriftReport).where(col(DriftReport.id).in_(ids)))
            for report in rows:
                drifted = 1.0 if report.verdict == "drift" else 0.0
                family.add_metric([report.alias, report.template or ""], drifted)
        return family

    def _rollouts(self, session: Session) -> Metric:
        family = GaugeMetricFamily(
            "loraloop_rollouts",
            "Rollouts by alias, kind and state (running, promoted, rolled_back, aborted)",
            labels=["alias", "kind", "state"],
        )
        query = select(Rollout.alias, Rollout.kind, Rollout.state, func.count()).group_by(
            col(Rollout.alias), col(Rollout.kind), col(Rollout.state)
        )
        for alias, kind, state, count in session.exec(query):
            family.add_metric([alias, kind, state], float(count))
        return family
