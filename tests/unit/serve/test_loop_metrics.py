"""The loop's state on /metrics, read from the database when scraped: the scheduler lease,
each job's last success and failure per target, the latest drift verdict, rollouts by state."""

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from feedback.drift.tables import DriftReport
from feedback.jobs import JobRun
from feedback.lease import LeaderLease
from feedback.models import utcnow
from loraloop import db
from serve.loop_metrics import LoopCollector
from serve.tables import Rollout


def scrape(collector: LoopCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_loop_state_is_read_when_scraped(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    now = utcnow()
    hour = timedelta(hours=1)
    with Session(engine) as session:
        expires = now + timedelta(seconds=30)
        session.add(
            LeaderLease(name="scheduler", owner="w1", acquired_at=now, renewed_at=now,
                        expires_at=expires)
        )  # fmt: skip
        for job, target, status, ended in [
            ("drift", "support", "succeeded", now - 2 * hour),
            ("drift", "support", "succeeded", now - hour),
            ("drift", "support", "failed", now - 3 * hour),
            ("retrain", "support", "failed", now),
            ("retrain", "support", "running", None),
        ]:
            session.add(JobRun(job=job, target=target, trigger="cron", status=status,
                               started_at=now - 4 * hour, finished_at=ended))  # fmt: skip
        verdicts = [("support", "no_drift"), ("support", "drift"),
                    ("support", "not_enough_data"), ("billing", "no_drift")]  # fmt: skip
        for alias, verdict in verdicts:
            session.add(DriftReport(alias=alias, reference_kind="window", verdict=verdict))
        for alias, state in [("support", "rolled_back"), ("support", "rolled_back"),
                             ("support", "promoted"), ("billing", "running")]:  # fmt: skip
            session.add(Rollout(alias=alias, version=2, baseline_version=1, state=state))
        session.commit()
    got = scrape(LoopCollector(engine, ttl_s=0))
    assert 20 < got[("loraloop_worker_lease_expires_in_seconds", ())] <= 30
    support = (("job", "drift"), ("target", "support"))
    assert (
        got[("loraloop_job_last_success_timestamp_seconds", support)]
        == round((now - hour).timestamp(), 6)
        or abs(
            got[("loraloop_job_last_success_timestamp_seconds", support)] - (now - hour).timestamp()
        )
        < 1e-3
    )
    retrain = (("job", "retrain"), ("target", "support"))
    assert (
        abs(got[("loraloop_job_last_failure_timestamp_seconds", retrain)] - now.timestamp()) < 1e-3
    )
    assert ("loraloop_job_last_success_timestamp_seconds", retrain) not in got
    drifted = "loraloop_drift_detected"
    assert got[(drifted, (("alias", "support"), ("template", "")))] == 1.0, "the latest verdict"
    assert got[(drifted, (("alias", "billing"), ("template", "")))] == 0.0
    rolled = (("alias", "support"), ("kind", "adapter"), ("state", "rolled_back"))
    assert got[("loraloop_rollouts", rolled)] == 2.0


def test_a_database_that_does_not_answer_leaves_the_series_out() -> None:
    engine = db.create_db_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert scrape(LoopCollector(engine, ttl_s=0)) == {}
