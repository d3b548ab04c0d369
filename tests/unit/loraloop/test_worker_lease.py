"""Scheduler high availability: `loraloop worker` on two machines, exactly one active."""

import os
from pathlib import Path

from typer.testing import CliRunner

from feedback.lease import Lease
from loraloop import db
from loraloop.cli import app
from loraloop.launch import free_port
from tests.utils.processes import Child, leader
from tests.utils.replicas import wait_until

TTL_S = 2


def worker_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "LORALOOP_DB_URL": url,
        "LORALOOP_WORKER_LEASE_TTL_S": str(TTL_S),
        "PYTHONUNBUFFERED": "1",
    }


def test_the_lease_is_held_by_one_contender_at_a_time(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    a, b = (Lease(engine, "scheduler", owner, ttl_s=60) for owner in ("a", "b"))
    try:
        assert a.acquire() and not b.acquire()
        assert a.acquire(), "the holder renews"
        a.release()
        assert b.acquire() and not a.acquire()
        expired = Lease(engine, "scheduler", "b", ttl_s=-1)
        assert expired.acquire(), "renewing into the past: the lease is free for others"
        assert a.acquire()
    finally:
        engine.dispose()


def test_standby_worker_takes_over_when_the_active_one_dies(
    migrated_db: str, tmp_path: Path
) -> None:
    env = worker_env(migrated_db)
    first = Child(["worker"], env, tmp_path / "first.log")
    second: Child | None = None
    try:
        wait_until(lambda: "active" in first.output(), 60, "first worker active")
        assert leader(migrated_db).owner == first.owner  # type: ignore[union-attr]
        second = Child(["worker"], env, tmp_path / "second.log")
        wait_until(lambda: "standby" in second.output(), 60, "second worker on standby")
        assert leader(migrated_db).owner == first.owner, "the leader keeps its lease"  # type: ignore[union-attr]

        listed = CliRunner().invoke(app, ["jobs", "list"], env={"LORALOOP_DB_URL": migrated_db})
        assert f"scheduler leader: {first.owner}" in listed.output, listed.output

        first.kill()
        took = wait_until(
            lambda: (row := leader(migrated_db)) is not None and row.owner == second.owner,
            TTL_S * 3 + 5,
            "standby took over",
        )
        assert took <= TTL_S * 3 + 5
        wait_until(lambda: "scheduler active" in second.output(), 10, "second says it is active")

        assert second.terminate() == 0, second.output()
        assert leader(migrated_db) is None, "a clean stop gives the lease up at once"
    finally:
        first.kill()
        if second is not None and second.proc.poll() is None:
            second.kill()


def test_worker_without_a_database_retries_and_says_so(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/none"
    child = Child(["worker"], worker_env(url), tmp_path / "worker.log")
    try:
        wait_until(
            lambda: child.output().count("the database does not answer") >= 2,
            60,
            "retries logged",
        )
        assert child.proc.poll() is None, "it keeps retrying instead of exiting"
        assert "retrying in" in child.output()
    finally:
        assert child.terminate() == 0, child.output()
