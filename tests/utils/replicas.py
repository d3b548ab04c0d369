"""Fake engine replicas (tests.fake_engine processes) that a test can stop and bring back."""

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from feedback.models import Interaction
from loraloop.launch import free_port
from serve.engine import EngineManager
from serve.settings import EngineSettings
from tests.utils.processes import ENGINE_AUTH, ENGINE_KEY


def fake_replica(
    tmp_path: Path, model_dir: Path, port: int | None = None, mode: str = "ok", delay_s: float = 0
) -> EngineManager:
    """A started fake engine on `port` (a fresh one by default); `mode` as FAKE_ENGINE_MODE,
    `delay_s` as FAKE_ENGINE_DELAY_S (every completion that much slower)."""
    manager = EngineManager(
        EngineSettings(
            entrypoint="tests.fake_engine",
            port=port or free_port(),
            log_dir=tmp_path / "logs",
            restart=False,
            startup_timeout_s=30,
            api_key=ENGINE_KEY,
        ),
        model_dir,
        "base",
    )
    with _env("FAKE_ENGINE_MODE", mode), _env("FAKE_ENGINE_DELAY_S", str(delay_s)):
        manager.start()
    return manager


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def engine_models(url: str, headers: dict[str, str] | None = None) -> set[str]:
    """The models an engine serves (asked with its key: it demands one)."""
    answer = httpx.get(f"{url}/v1/models", timeout=5, headers=headers or ENGINE_AUTH)
    return {m["id"] for m in answer.json()["data"]}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took for `predicate` to hold; fails the test after `timeout`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.05)
    return time.monotonic() - started


def replica_up(gateway: str, replica: str) -> bool:
    """Whether `gateway`'s /health lists `replica` as in rotation."""
    try:
        replicas = httpx.get(f"{gateway}/health", timeout=5).json()["replicas"]
    except httpx.HTTPError:
        return False
    return any(r["url"] == replica and r["state"] == "up" for r in replicas)


@contextmanager
def running_replicas(tmp_path: Path, model_dir: Path, count: int) -> Iterator[list[EngineManager]]:
    """`count` started fake replicas, stopped afterwards (a test may replace one in the list)."""
    started = [fake_replica(tmp_path, model_dir) for _ in range(count)]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop(timeout=5)


def served_by(gateway: TestClient, ids: list[str]) -> Counter[str]:
    """Which engine replica answered each of these interactions (all of them captured)."""
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        rows = session.exec(select(Interaction).where(col(Interaction.id).in_(ids))).all()
    assert len(rows) == len(ids), "every request is captured"
    return Counter(r.engine_url or "" for r in rows)
