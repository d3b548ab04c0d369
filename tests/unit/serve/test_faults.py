"""Faults on the streaming path, through a live gateway and the fake engine: a client that
goes away mid-stream, an engine killed mid-stream. (Database outages and a full spool
disk are in tests/unit/feedback/test_capture.py.)"""

import json
import os
import signal
from collections.abc import Callable

import httpx
import pytest
from sqlmodel import Session, select

from feedback.models import Interaction
from loraloop import db
from loraloop.settings import Settings
from tests.utils.adapters import make_adapter_dir
from tests.utils.replicas import wait_until

LONG = " ".join(f"word{i}" for i in range(400))


def stream_body(model: str) -> dict[str, object]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": LONG}]}


def record(db_url: str, interaction_id: str) -> Interaction | None:
    engine = db.create_db_engine(db_url)
    with Session(engine) as session:
        found = session.exec(select(Interaction).where(Interaction.id == interaction_id)).first()
    engine.dispose()
    return found


@pytest.fixture
def slow_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ENGINE_CHUNK_DELAY_S", "0.02")


def test_client_disconnect_aborts_the_engine_request_and_is_captured(
    slow_stream: None, sqlite_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    settings = make_live_gateway(sqlite_url)
    base = f"http://127.0.0.1:{settings.serve.port}"
    engine = f"http://127.0.0.1:{settings.engine.port}"
    with (
        httpx.Client(base_url=base, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=stream_body("base")) as response,
    ):
        interaction_id = response.headers["X-Interaction-Id"]
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]
    assert any(line.startswith("data: ") for line in got)
    # The client is gone after a few of 400 chunks (8 s of streaming in all).
    wait_until(lambda: httpx.get(f"{engine}/fake/stats").json()["aborted"] == 1, 5, "engine abort")
    assert httpx.get(f"{engine}/fake/stats").json()["completed"] == 0
    wait_until(lambda: record(sqlite_url, interaction_id) is not None, 5, "capture")
    captured = record(sqlite_url, interaction_id)
    assert captured is not None and captured.status_code == 499
    assert "client disconnected" in (captured.error or "")
    assert captured.response_text and "word399" not in captured.response_text


def test_engine_killed_mid_stream_gives_a_clean_error_then_restarts_with_adapters(
    slow_stream: None, sqlite_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    settings = make_live_gateway(sqlite_url)
    base = f"http://127.0.0.1:{settings.serve.port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        path = make_adapter_dir(settings.serve.adapter_store, "s1")
        assert client.post("/admin/adapters", json={"name": "s", "path": str(path)}).is_success
        assert client.post("/admin/aliases/s/promote", json={"version": 1}).is_success
        pid = client.get("/health").json()["engine"]["pid"]

        events = []
        with client.stream("POST", "/v1/chat/completions", json=stream_body("s")) as response:
            assert response.status_code == 200
            interaction_id = response.headers["X-Interaction-Id"]
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                if len(events) == 5:
                    os.kill(pid, signal.SIGKILL)
        assert events[-1] == "[DONE]", "the stream ends properly"
        error = json.loads(events[-2])["error"]
        assert error["code"] == "engine_error" and "incomplete" in error["message"]

        wait_until(lambda: client.get("/health").json()["engine"]["restarts"] == 1, 60, "restart")
        wait_until(lambda: client.get("/health").status_code == 200, 30, "healthy again")
        answer = client.post(
            "/v1/chat/completions",
            json={"model": "s", "messages": [{"role": "user", "content": "again"}]},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"].startswith("[s@1-")

    wait_until(lambda: record(sqlite_url, interaction_id) is not None, 5, "capture")
    captured = record(sqlite_url, interaction_id)
    assert captured is not None and captured.status_code == 502
    assert "failed while streaming" in (captured.error or "")
