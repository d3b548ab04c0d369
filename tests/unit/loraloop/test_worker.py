"""The scheduler: per-alias drift jobs in the database job store, runs, history, the CLI."""

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session
from typer.testing import CliRunner

from feedback.drift import DriftReport, DriftSettings
from feedback.jobs import recent_runs
from loraloop import db
from loraloop.cli import app
from loraloop.settings import DatabaseSettings, Settings, WorkerSettings
from loraloop.worker import Worker, scheduled_jobs
from serve.tables import Alias


def settings_for(url: str, cron: str = "*/5 * * * *") -> Settings:
    return Settings(
        db=DatabaseSettings(url=url),
        worker=WorkerSettings(drift_cron=cron, sync_interval_s=0.2),
        drift=DriftSettings(min_rows=10),
    )


def add_alias(url: str, name: str) -> None:
    engine = db.create_db_engine(url)
    with Session(engine) as session:
        session.add(Alias(name=name))
        session.commit()
    engine.dispose()


def test_a_drift_job_per_alias_in_the_database(migrated_db: str) -> None:
    add_alias(migrated_db, "support")
    add_alias(migrated_db, "sales")
    engine = db.create_db_engine(migrated_db)
    worker = Worker(engine, settings_for(migrated_db))
    worker.start()
    try:
        jobs = {j["id"]: j for j in scheduled_jobs(engine)}
        assert set(jobs) == {"drift:sales", "drift:support"}
        assert "minute='*/5'" in jobs["drift:support"]["trigger"]
        assert jobs["drift:support"]["next_run"] is not None

        add_alias(migrated_db, "billing")  # picked up by the periodic sync
        deadline = time.monotonic() + 10
        while "drift:billing" not in {j["id"] for j in scheduled_jobs(engine)}:
            assert time.monotonic() < deadline, "new alias got no job"
            time.sleep(0.1)
    finally:
        worker.stop()

    # Another process (or a restart) with another cron: the stored jobs follow the setting.
    again = Worker(engine, settings_for(migrated_db, "0 3 * * *"), BackgroundScheduler())
    again.start()
    again.stop()
    assert all("hour='3'" in j["trigger"] for j in scheduled_jobs(engine))
    engine.dispose()


def test_a_scheduled_run_is_recorded_and_listed(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_alias(sqlite_url, "support")
    monkeypatch.setenv("LORALOOP_DB_URL", sqlite_url)
    engine = db.create_db_engine(sqlite_url)
    worker = Worker(engine, settings_for(sqlite_url))
    worker.start()
    try:
        worker.scheduler.get_job("drift:support").modify(next_run_time=datetime.now(UTC))
        deadline = time.monotonic() + 30
        while True:
            with Session(engine) as session:
                runs = [r for r in recent_runs(session) if r.status != "running"]
            if runs:
                break
            assert time.monotonic() < deadline, "the scheduled drift job did not run"
            time.sleep(0.2)
    finally:
        worker.stop()
    assert (runs[0].job, runs[0].target, runs[0].trigger) == ("drift", "support", "cron")
    assert runs[0].status == "succeeded" and "not_enough_data" in (runs[0].result or "")
    with Session(engine) as session:
        assert session.get(DriftReport, 1).trigger == "cron"  # type: ignore[union-attr]
    engine.dispose()

    listed = CliRunner().invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "drift:support" in listed.output and "succeeded" in listed.output


def test_drift_cli_run_and_reports(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALOOP_DB_URL", sqlite_url)
    result = CliRunner().invoke(app, ["drift", "run", "--alias", "support"])
    assert result.exit_code == 0, result.output
    assert "not_enough_data" in result.output and "reference has 0 rows" in result.output
    listed = CliRunner().invoke(app, ["drift", "reports"])
    assert listed.exit_code == 0 and "support" in listed.output


def test_bad_input_on_the_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALOOP_DB_URL", sqlite_url)
    missing = CliRunner().invoke(app, ["drift", "run"])
    assert missing.exit_code == 2 and "--alias" in missing.output
    monkeypatch.setenv("LORALOOP_WORKER_DRIFT_CRON", "every hour")
    bad = CliRunner().invoke(app, ["jobs", "list"])
    assert bad.exit_code == 2
    assert "LORALOOP_WORKER_DRIFT_CRON" in bad.output and "crontab" in bad.output


def test_the_gateway_runs_the_scheduler_when_asked(
    make_gateway,  # type: ignore[no-untyped-def]
    sqlite_url: str,
) -> None:
    add_alias(sqlite_url, "support")
    with_worker = make_gateway(sqlite_url, worker=True)
    deadline = time.monotonic() + 10
    while [j["id"] for j in scheduled_jobs(with_worker.app.state.db)] != ["drift:support"]:
        assert time.monotonic() < deadline, "the gateway's scheduler added no drift job"
        time.sleep(0.05)
    assert with_worker.app.state.worker.scheduler.running
    without = make_gateway(sqlite_url)
    assert without.app.state.worker is None


def test_per_template_reports_follow_the_alias(sqlite_url: str) -> None:
    from datetime import timedelta

    from feedback.models import utcnow
    from loraloop.worker import DriftJobs
    from tests.utils.tracing import recording
    from tests.utils.traffic import insert_traffic, rows

    engine = db.create_db_engine(sqlite_url)
    now = utcnow()
    for template in ("faq", "refunds"):
        insert_traffic(engine, rows(5, now - timedelta(hours=1), now, template=template)[0])
    settings = settings_for(sqlite_url)
    settings.drift.per_template = True
    tracing, spans = recording()
    reports = DriftJobs(engine, settings, tracing=tracing).run_alias("support", "cron")
    traced = {span.name: span.attributes or {} for span in spans.get_finished_spans()}
    assert set(traced) == {"drift support", "drift support/faq", "drift support/refunds"}
    assert traced["drift support/faq"]["loraloop.verdict"] == "not_enough_data"
    assert traced["drift support"]["loraloop.trigger"] == "cron"
    assert [(r.alias, r.template) for r in reports] == [
        ("support", None),
        ("support", "faq"),
        ("support", "refunds"),
    ]
    assert all(r.verdict == "not_enough_data" for r in reports)
    assert reports[1].current_rows == 5 and reports[0].current_rows == 10
    with Session(engine) as session:
        targets = [r.target for r in recent_runs(session)]
    assert targets == ["support/refunds", "support/faq", "support"]
    engine.dispose()
