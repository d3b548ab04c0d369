"""Job history and per-target locks for scheduled work (drift checks, retraining).

The lock is a row whose primary key is the job's target (e.g. ``drift:support``): inserting
it succeeds for exactly one process, whatever the number of gateways and workers, on SQLite
and PostgreSQL alike. A lock left by a crashed process expires.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Column, Engine, Float, LargeBinary, Table, Text, Unicode, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from feedback.models import aware, utcnow

T = TypeVar("T")


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=32, index=True)  # drift, retrain
    target: str = Field(max_length=160, index=True)  # alias or alias/template
    trigger: str = Field(max_length=16)  # cron, manual, drift
    started_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    status: str = Field(default="running", max_length=16)  # running, succeeded, failed, skipped
    result: str | None = Field(default=None, max_length=256)
    error: str | None = Field(default=None, sa_column=Column(Text))

    @property
    def seconds(self) -> float | None:
        """How long it took; None while it runs."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


# APScheduler's own job-store table (SQLAlchemyJobStore.jobs_t), declared here so that the
# migrations own it like every other table; APScheduler finds it there and creates nothing.
scheduler_jobs = Table(
    "apscheduler_jobs",
    SQLModel.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class JobLock(SQLModel, table=True):
    __tablename__ = "job_lock"

    name: str = Field(primary_key=True, max_length=200)
    owner: str = Field(max_length=64)
    acquired_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class JobBusy(RuntimeError):
    """Another run for the same target holds the lock."""


@contextmanager
def job_lock(db: Engine, name: str, owner: str, ttl_s: float) -> Iterator[None]:
    """Hold `name` for the block, or raise JobBusy. Expired locks are taken over."""
    now = utcnow()
    with Session(db) as session:
        held = session.get(JobLock, name)
        if held is not None and aware(held.expires_at) > now:
            raise JobBusy(f"{name} is already running")
        if held is not None:
            session.delete(held)
            session.commit()
        session.add(JobLock(name=name, owner=owner, expires_at=now + timedelta(seconds=ttl_s)))
        try:
            session.commit()
        except IntegrityError as exc:
            raise JobBusy(f"{name} is already running") from exc
    try:
        yield
    finally:
        with Session(db) as session:
            session.exec(
                delete(JobLock).where(col(JobLock.name) == name, col(JobLock.owner) == owner)
            )  # type: ignore[call-overload]
            session.commit()


def run_job(
    db: Engine,
    job: str,
    target: str,
    trigger: str,
    work: Callable[[], T],
    describe: Callable[[T], str] = str,
    lock_ttl_s: float = 3600,
) -> tuple[JobRun, T | None]:
    """Run `work` under the target's lock and record the run, whatever its outcome.

    A run refused because another holds the lock is recorded as `skipped`; an exception is
    recorded as `failed` with its message and re-raised.
    """
    with Session(db) as session:
        run = JobRun(job=job, target=target, trigger=trigger)
        session.add(run)
        session.commit()
        session.refresh(run)
    result: T | None = None
    try:
        with job_lock(db, f"{job}:{target}", f"run-{run.id}", lock_ttl_s):
            result = work()
        run = _finish(db, run, "succeeded", result=describe(result)[:256])
    except JobBusy as exc:
        run = _finish(db, run, "skipped", error=str(exc))
    except Exception as exc:
        _finish(db, run, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return run, result


def _finish(db: Engine, run: JobRun, status: str, **fields: Any) -> JobRun:
    """Record the outcome; returns the stored row."""
    with Session(db) as session:
        row = session.get(JobRun, run.id)
        assert row is not None
        row.sqlmodel_update({"status": status, "finished_at": utcnow(), **fields})
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def recent_runs(
    session: Session, limit: int = 50, job: str | None = None, target: str | None = None
) -> list[JobRun]:
    query = select(JobRun).order_by(col(JobRun.id).desc()).limit(limit)
    if job:
        query = query.where(JobRun.job == job)
    if target:
        query = query.where(JobRun.target == target)
    return list(session.exec(query))
