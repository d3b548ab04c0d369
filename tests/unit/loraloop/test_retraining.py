"""Retraining as a job: cron and drift triggers, one run per alias, failures recorded with
production untouched."""

import json
import re
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient
from opentelemetry.trace import StatusCode
from sqlmodel import Session

from feedback.drift import DriftReport
from feedback.jobs import JobBusy, job_lock, recent_runs
from loraloop import db
from loraloop.retraining import RetrainJobs, drift_retrain_hook, queue_retrain
from loraloop.settings import DatabaseSettings, Settings, WorkerSettings
from loraloop.worker import Worker, scheduled_jobs
from retrain import DatasetError, RetrainError, RetrainSettings
from serve.registry import Registry
from serve.settings import ModelSettings, ServeSettings
from tests.utils.adapters import make_adapter_dir
from tests.utils.tracing import recording


def settings_for(url: str, tmp_path: Path, **worker: object) -> Settings:
    return Settings(
        db=DatabaseSettings(url=url),
        serve=ServeSettings(adapter_store=tmp_path / "adapters"),
        model=ModelSettings(path=tmp_path / "base", name="base"),
        worker=WorkerSettings(sync_interval_s=0.2, **worker),  # type: ignore[arg-type]
        retrain=RetrainSettings(runs_dir=tmp_path / "runs"),
    )


def with_production(url: str, tmp_path: Path, alias: str = "support") -> None:
    engine = db.create_db_engine(url)
    registry = Registry("base", tmp_path / "adapters", 16)
    with Session(engine) as session:
        registry.register(
            session, alias, make_adapter_dir(tmp_path / "adapters", "v1", base="base")
        )
        registry.promote(session, alias, 1)
    engine.dispose()


def test_cron_and_drift_triggers_schedule_runs(migrated_db: str, tmp_path: Path) -> None:
    with_production(migrated_db, tmp_path)
    engine = db.create_db_engine(migrated_db)
    settings = settings_for(migrated_db, tmp_path, retrain_cron="0 2 * * 0")
    worker = Worker(engine, settings, BackgroundScheduler())
    worker.start()
    try:
        assert worker.sync() == ["drift:support", "retrain:support"]
        jobs = {j["id"]: j for j in scheduled_jobs(engine)}
        assert "day_of_week='0'" in jobs["retrain:support"]["trigger"]
        assert jobs["retrain:support"]["next_run"] is not None
    finally:
        worker.stop()

    hook = drift_retrain_hook(engine)
    report = DriftReport(alias="support", reference_kind="previous", verdict="drift")
    assert hook(report) == "queued"
    assert hook(report) == "already queued"  # a queued run is not queued twice
    queued = {j["id"]: j for j in scheduled_jobs(engine)}["retrain-now:support"]
    assert queued["next_run"] is not None and "date" in queued["trigger"]
    engine.dispose()


def test_a_failed_run_is_recorded_and_changes_nothing(migrated_db: str, tmp_path: Path) -> None:
    with_production(migrated_db, tmp_path)
    engine = db.create_db_engine(migrated_db)
    tracing, spans = recording()
    settings = settings_for(migrated_db, tmp_path)
    jobs = RetrainJobs(engine, settings, "http://127.0.0.1:9", tracing=tracing)
    with pytest.raises(DatasetError, match="nothing to learn"):
        jobs.run("support", "cron")
    run_span, *stages = sorted(spans.get_finished_spans(), key=lambda s: s.start_time or 0)
    assert run_span.name == "retrain support" and [s.name for s in stages] == ["dataset"]
    assert stages[0].parent is not None and stages[0].parent.span_id == run_span.context.span_id
    assert run_span.status.status_code == StatusCode.ERROR  # the failure is on the trace
    assert "nothing to learn" in str(run_span.status.description)
    assert str((run_span.attributes or {})["loraloop.run_id"]) in str(
        next((tmp_path / "runs" / "support").glob("*/run.json"))
    )
    with pytest.raises(RetrainError, match="alias 'sales' has no production version"):
        jobs.run("sales")
    with job_lock(engine, "retrain:support", "someone-else", 60), pytest.raises(JobBusy):
        jobs.run("support", "drift")
    with Session(engine) as session:
        runs = recent_runs(session, job="retrain")
        alias = jobs.retrainer.registry.alias(session, "support")
    assert [(r.trigger, r.status) for r in runs] == [("drift", "skipped"), ("cron", "failed")]
    assert "DatasetError" in (runs[1].error or "")
    assert alias is not None and alias.production_version == 1 and alias.revision == 1
    [record] = (tmp_path / "runs" / "support").glob("*/run.json")
    assert '"outcome": "failed"' in record.read_text()
    engine.dispose()


def test_queue_retrain_is_idempotent_per_alias(sqlite_url: str) -> None:
    engine = db.create_db_engine(sqlite_url)
    assert queue_retrain(engine, "a", "drift") == "queued"
    assert queue_retrain(engine, "b", "drift") == "queued"
    assert queue_retrain(engine, "a", "drift") == "already queued"
    assert sorted(j["id"] for j in scheduled_jobs(engine)) == ["retrain-now:a", "retrain-now:b"]
    engine.dispose()


def test_a_preference_objective_without_enough_judgments_fails_clearly(
    gateway: TestClient, migrated_db: str, tmp_path: Path
) -> None:
    """Only thumbs-up were given: KTO has nothing to contrast, and says so; auto falls back
    to SFT and says why; the run record keeps the objective either way."""
    for i in range(12):
        body = {"model": "base", "messages": [{"role": "user", "content": f"question {i}"}]}
        iid = gateway.post("/v1/chat/completions", json=body).json()["interaction_id"]
        gateway.app.state.capture.flush()  # type: ignore[attr-defined]
        assert gateway.post("/v1/feedback", json={"interaction_id": iid, "rating": "up"}).is_success
    engine = db.create_db_engine(migrated_db)
    settings = settings_for(migrated_db, tmp_path)
    settings.retrain.objective = "kto"
    with pytest.raises(DatasetError, match=r"every judged answer is desirable .* undesirable"):
        RetrainJobs(engine, settings, "http://127.0.0.1:9").run("fresh", new=True)
    settings.retrain.objective = "auto"
    with pytest.raises(DatasetError, match="only 0 training examples"):
        RetrainJobs(engine, settings, "http://127.0.0.1:9").run("fresh", new=True)
    records = sorted((tmp_path / "runs" / "fresh").glob("*/run.json"))
    objectives = [json.loads(r.read_text())["objective"] for r in records]
    assert {o["objective"] for o in objectives} == {"kto", "sft"}
    auto = next(o for o in objectives if o["objective"] == "sft")
    assert auto["reason"].startswith("auto: too few preferences")
    assert re.search(r"\d+ judged answers \(\d+ desirable, 0 undesirable\)", auto["reason"])
    with Session(engine) as session:
        assert Registry("base", tmp_path / "adapters", 16).alias(session, "fresh") is None
    engine.dispose()


def test_a_dry_run_plans_without_training_or_recording(
    gateway: TestClient, migrated_db: str, tmp_path: Path
) -> None:
    """`retrain run --dry-run`: auto's pick from the thumbs there are, the counts it read,
    no job, no run directory; a plan the data cannot carry fails as the run would."""
    for i in range(16):
        body = {"model": "base", "messages": [{"role": "user", "content": f"question {i}"}]}
        iid = gateway.post("/v1/chat/completions", json=body).json()["interaction_id"]
        gateway.app.state.capture.flush()  # type: ignore[attr-defined]
        rating = "up" if i % 2 else "down"
        assert gateway.post(
            "/v1/feedback", json={"interaction_id": iid, "rating": rating}
        ).is_success
    engine = db.create_db_engine(migrated_db)
    settings = settings_for(migrated_db, tmp_path)
    settings.retrain.objective = "auto"
    settings.retrain.min_judged, settings.retrain.min_judged_class = 10, 4
    jobs = RetrainJobs(engine, settings, "http://127.0.0.1:9")
    plan = jobs.plan("thumbs", new=True)
    assert plan.outcome == "planned" and plan.objective["objective"] == "kto"
    assert "too few pairs for DPO" in plan.objective["reason"]
    judged = plan.preference["data"]["judged"]
    assert judged["by_source"] == {"end_user": 16} and judged["train"] + judged["eval"] == 16
    settings.retrain.objective = "dpo"
    with pytest.raises(DatasetError, match="dpo needs preference pairs"):
        jobs.plan("thumbs", new=True)
    with Session(engine) as session:
        assert recent_runs(session, job="retrain") == []
    assert not (tmp_path / "runs").exists()
    engine.dispose()
