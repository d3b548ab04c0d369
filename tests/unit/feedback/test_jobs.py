"""Job locks and job history on both databases."""

import threading
import time
from datetime import timedelta

import pytest
from sqlmodel import Session

from feedback.jobs import JobBusy, JobLock, job_lock, recent_runs, run_job
from feedback.models import utcnow
from loraloop import db


def test_one_holder_among_racing_threads(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    holders: list[int] = []
    start = threading.Barrier(6)

    def contend(k: int) -> None:
        start.wait()
        try:
            with job_lock(engine, "drift:support", f"t{k}", 60):
                holders.append(k)
                time.sleep(0.3)
        except JobBusy:
            pass

    threads = [threading.Thread(target=contend, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(holders) == 1
    with job_lock(engine, "drift:support", "later", 60):  # released afterwards
        pass
    engine.dispose()


def test_an_expired_lock_is_taken_over(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    with Session(engine) as session:
        session.add(JobLock(name="drift:a", owner="crashed", expires_at=utcnow() - timedelta(1)))
        session.commit()
    with (
        job_lock(engine, "drift:a", "me", 60),
        pytest.raises(JobBusy),
        job_lock(engine, "drift:a", "other", 60),
    ):
        pass
    engine.dispose()


def test_runs_are_recorded_whatever_their_outcome(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    ok, value = run_job(engine, "drift", "a", "manual", lambda: 42, describe=lambda v: f"v={v}")
    assert (ok.status, ok.result, value) == ("succeeded", "v=42", 42)

    def boom() -> None:
        raise RuntimeError("evidently exploded")

    with pytest.raises(RuntimeError):
        run_job(engine, "drift", "b", "cron", boom)
    with job_lock(engine, "drift:c", "holder", 60):
        skipped, nothing = run_job(engine, "drift", "c", "cron", lambda: 1)
    assert skipped.status == "skipped" and nothing is None
    with Session(engine) as session:
        runs = recent_runs(session)
    assert [(r.target, r.status) for r in runs] == [
        ("c", "skipped"),
        ("b", "failed"),
        ("a", "succeeded"),
    ]
    assert runs[1].error == "RuntimeError: evidently exploded"
    assert all(r.finished_at is not None for r in runs)
    engine.dispose()
