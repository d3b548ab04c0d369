"""The capture writer: batches, spool on outage, replay, never a record lost or doubled."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, text
from sqlmodel import Session, select

from feedback.capture import CaptureWriter
from feedback.models import Interaction, new_id
from loraloop import db
from loraloop.settings import Settings
from tests.conftest import reset_schema


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
