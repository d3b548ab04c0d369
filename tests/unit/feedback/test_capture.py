"""The capture writer: batches, spool on outage, replay, never a record lost or doubled."""

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, text
from sqlmodel import Session, select

from feedback.capture import CaptureWriter
from feedback.models import Interaction, new_id
from loraloop import db
from loraloop.settings import Settings
from tests.utils.postgres import reset_schema


def record(**extra: Any) -> dict[str, Any]:
    return {"id": new_id(), "endpoint": "chat", "request": {"n": 1}, "status_code": 200, **extra}


def stored_ids(url: str) -> list[str]:
    engine = db.create_db_engine(url)
    with Session(engine) as session:
        ids = list(session.exec(select(Interaction.id)))
    engine.dispose()
    return ids


def test_writes_in_batches(sqlite_url: str, tmp_path: Path) -> None:
    engine = db.create_db_engine(sqlite_url)
    writer = CaptureWriter(engine, tmp_path / "spool.jsonl", batch_size=100)
    writer.start()
    records = [record() for _ in range(1000)]
    for r in records:
        writer.submit(r)
    writer.close()
    assert sorted(stored_ids(sqlite_url)) == sorted(r["id"] for r in records)
    assert writer.written == 1000 and writer.spooled == 0


def test_spool_is_replayed_by_the_next_writer(sqlite_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    down = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    writer = CaptureWriter(down, spool, retry_interval_s=60)
    writer.start()
    records = [record() for _ in range(50)]
    for r in records:
        writer.submit(r)
    writer.close()
    assert writer.spooled == 50
    assert len(spool.read_text().splitlines()) == 50

    engine = db.create_db_engine(sqlite_url)
    again = CaptureWriter(engine, spool, retry_interval_s=0.05)
    again.start()
    again.close()
    assert sorted(stored_ids(sqlite_url)) == sorted(r["id"] for r in records)
    assert not spool.exists()


def test_full_queue_spills_to_spool_and_loses_nothing(sqlite_url: str, tmp_path: Path) -> None:
    engine = db.create_db_engine(sqlite_url)
    writer = CaptureWriter(engine, tmp_path / "spool.jsonl", queue_size=2, retry_interval_s=0.01)
    records = [record() for _ in range(10)]
    for r in records:
        writer.submit(r)  # the writer is not running yet: the queue overflows
    assert writer.spooled == 8
    writer.start()
    writer.close()
    assert sorted(stored_ids(sqlite_url)) == sorted(r["id"] for r in records)


def set_connections(admin_url: str, database: str, allowed: bool) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            )
    admin.dispose()


def test_database_outage_mid_load_loses_and_doubles_nothing(
    pg_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    """Through the gateway: PostgreSQL refuses connections for a while under load."""
    from sqlalchemy.engine import make_url

    db.upgrade(pg_url)
    database = make_url(pg_url).database
    admin_url = make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)
    settings = make_live_gateway(pg_url)
    url = f"http://127.0.0.1:{settings.serve.port}/v1/chat/completions"
    returned: list[str] = []
    lock = threading.Lock()

    def load(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(n):
                response = client.post(
                    url, json={"model": "base", "messages": [{"role": "user", "content": f"q{i}"}]}
                )
                assert response.status_code == 200
                with lock:
                    returned.append(response.headers["X-Interaction-Id"])

    try:
        threads = [threading.Thread(target=load, args=(60,)) for _ in range(4)]
        for t in threads:
            t.start()
        while len(returned) < 60:
            threading.Event().wait(0.01)
        set_connections(admin_url, database, allowed=False)
        while len(returned) < 160:
            threading.Event().wait(0.01)
        spool = settings.feedback.capture_spool_path
        for _ in range(100):
            if spool.exists():
                break
            threading.Event().wait(0.05)
        assert spool.exists(), "records went to the spool while the database was down"
        set_connections(admin_url, database, allowed=True)
        for t in threads:
            t.join()
    finally:
        set_connections(admin_url, database, allowed=True)
    try:
        check_all_stored_once(pg_url, returned)
    finally:
        reset_schema(pg_url)


def check_all_stored_once(pg_url: str, returned: list[str]) -> None:
    engine = db.create_db_engine(pg_url)
    deadline = threading.Event()
    for _ in range(400):  # the gateway replays the spool every 0.2 s
        with Session(engine) as session:
            count = session.exec(select(func.count()).select_from(Interaction)).one()
        if count >= len(returned):
            break
        deadline.wait(0.05)
    engine.dispose()
    ids = stored_ids(pg_url)
    assert len(returned) == 240
    assert len(ids) == len(set(ids)), "no record twice"
    assert set(ids) == set(returned), "every record once"


def test_bad_spooled_records_are_quarantined_not_retried_forever(
    migrated_db: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    good = [record() for _ in range(5)]
    bad = [
        record(created_at="the day before yesterday"),  # the row builder refuses it
        record(status_code="not a number") if "postgresql" in migrated_db else "not a record",
    ]
    lines = [json.dumps(r) for r in [*good[:3], *bad, *good[3:]]]
    lines.insert(2, '{"id": "torn", "endpo')  # a write cut short by a crash
    spool.write_text("\n".join(lines) + "\n")

    engine = db.create_db_engine(migrated_db)
    writer = CaptureWriter(engine, spool, retry_interval_s=0.05)
    assert writer.spooled == 8
    writer.start()
    writer.flush(timeout=10)
    writer.close()
    assert sorted(stored_ids(migrated_db)) == sorted(r["id"] for r in good)
    assert not spool.exists(), "the spool is done with: nothing is retried again"
    quarantined = [json.loads(line) for line in writer.quarantine_path.read_text().splitlines()]
    assert len(quarantined) == writer.quarantined == 3
    assert all(q["error"] for q in quarantined)
    assert CaptureWriter(engine, spool).quarantined == 3, "the count survives a restart"
    engine.dispose()


def test_unwritable_spool_holds_records_and_the_api_keeps_answering(
    pg_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    """Database down and the spool's disk full (/dev/full): requests are still answered,
    /health says why it is degraded, and every record lands once the database is back."""
    from sqlalchemy.engine import make_url

    db.upgrade(pg_url)
    database = make_url(pg_url).database
    admin_url = make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)
    settings = make_live_gateway(pg_url, feedback={"capture_spool_path": Path("/dev/full")})
    base = f"http://127.0.0.1:{settings.serve.port}"
    returned = []
    try:
        set_connections(admin_url, database, allowed=False)
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(20):
                r = client.post(
                    "/v1/chat/completions",
                    json={"model": "base", "messages": [{"role": "user", "content": f"q{i}"}]},
                )
                assert r.status_code == 200, r.text
                returned.append(r.headers["X-Interaction-Id"])
            for _ in range(100):
                health = client.get("/health").json()
                if health["capture"]["error"]:
                    break
                threading.Event().wait(0.05)
            assert "No space left on device" in health["capture"]["error"]
            assert health["capture"]["held"] > 0
            metrics = client.get("/metrics").text
            assert "loraloop_capture_held_records" in metrics
            assert "loraloop_capture_dropped_records 0.0" in metrics
    finally:
        set_connections(admin_url, database, allowed=True)
    try:
        engine = db.create_db_engine(pg_url)
        for _ in range(200):
            if len(stored_ids(pg_url)) >= 20:
                break
            threading.Event().wait(0.05)
        engine.dispose()
        ids = stored_ids(pg_url)
        assert sorted(ids) == sorted(returned), "every record once, none lost"
    finally:
        reset_schema(pg_url)


def test_feedback_on_an_interaction_still_in_the_capture_queue(
    pg_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    """A rating sent the moment the answer arrives is kept; while the database is down it
    gets 503 + Retry-After (never 404), and the retry after it is back succeeds."""
    from sqlalchemy.engine import make_url

    db.upgrade(pg_url)
    database = make_url(pg_url).database
    admin_url = make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)
    settings = make_live_gateway(pg_url, feedback={"feedback_wait_s": 1.0})
    chat = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.serve.port}") as client:
            for _ in range(20):  # at once after each answer: the record is still queued
                iid = client.post("/v1/chat/completions", json=chat).json()["interaction_id"]
                rated = client.post("/v1/feedback", json={"interaction_id": iid, "rating": "up"})
                assert rated.status_code == 200, rated.text

            set_connections(admin_url, database, allowed=False)
            iid = client.post("/v1/chat/completions", json=chat).json()["interaction_id"]
            waiting = client.post("/v1/feedback", json={"interaction_id": iid, "rating": "down"})
            assert waiting.status_code == 503
            assert waiting.headers["Retry-After"] == "2"
            assert waiting.json()["error"]["code"] == "database_unavailable"
            set_connections(admin_url, database, allowed=True)
            retried = client.post("/v1/feedback", json={"interaction_id": iid, "rating": "down"})
            assert retried.status_code == 200, retried.text
            unknown = client.post("/v1/feedback", json={"interaction_id": "0" * 32, "rating": 1})
            assert unknown.status_code == 404
    finally:
        set_connections(admin_url, database, allowed=True)
        reset_schema(pg_url)


def test_feedback_waits_for_a_queued_interaction_then_says_retry(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url, feedback={"feedback_wait_s": 0.3})
    capture = gateway.app.state.capture  # type: ignore[attr-defined]
    capture.close()  # the writer stops: what is submitted now stays queued
    chat = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}
    iid = gateway.post("/v1/chat/completions", json=chat).json()["interaction_id"]
    assert capture.pending(iid)
    waiting = gateway.post("/v1/feedback", json={"interaction_id": iid, "rating": "up"})
    assert waiting.status_code == 503
    assert waiting.headers["Retry-After"] == "2"
    assert "still being captured" in waiting.json()["error"]["message"]
