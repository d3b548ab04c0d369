"""Graceful shutdown: SIGTERM on `loraloop run` and on `loraloop engine`."""

import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
from sqlmodel import Session

from feedback.models import Interaction
from loraloop import db
from loraloop.launch import launch
from tests.utils.processes import Child, fake_platform_env
from tests.utils.replicas import wait_until


def platform_env(tmp_path: Path, model_dir: Path, db_url: str) -> dict[str, str]:
    return {**fake_platform_env(tmp_path, model_dir, db_url), "FAKE_ENGINE_DELAY_S": "2"}


def test_sigterm_lets_in_flight_requests_finish_and_flushes_capture(
    tmp_path: Path, fake_model_dir: Path, sqlite_url: str
) -> None:
    env = platform_env(tmp_path, fake_model_dir, sqlite_url)
    url = f"http://127.0.0.1:{env['LORALOOP_SERVE_PORT']}"
    body = {"model": "base", "messages": [{"role": "user", "content": "slow"}]}
    answers: list[httpx.Response] = []
    with launch(env, tmp_path / "platform.log", 60) as proc:
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "the engine runs as a child"
        slow = [
            threading.Thread(
                target=lambda: answers.append(
                    httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
                )
            )
            for _ in range(3)
        ]
        for t in slow:
            t.start()
        time.sleep(0.7)  # they reached the engine, which takes 2 s to answer
        assert answers == []
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: _refuses(url), 5, "gateway stops accepting")
        for t in slow:
            t.join(30)
        assert proc.wait(30) == 0, (tmp_path / "platform.log").read_text()[-3000:]
    assert [a.status_code for a in answers] == [200] * 3, "in-flight requests finished"
    engine = db.create_db_engine(sqlite_url)
    with Session(engine) as session:
        for answer in answers:
            row = session.get(Interaction, answer.json()["interaction_id"])
            assert row is not None and row.status_code == 200, "captured before exit"
    engine.dispose()
    assert not [p.pid for p in family if _alive(p)], "the engine went with the gateway"


def test_a_request_cut_by_the_shutdown_bound_gets_an_error_and_is_captured(
    tmp_path: Path, fake_model_dir: Path, sqlite_url: str
) -> None:
    env = {
        **platform_env(tmp_path, fake_model_dir, sqlite_url),
        "FAKE_ENGINE_DELAY_S": "20",
        "LORALOOP_SERVE_SHUTDOWN_TIMEOUT_S": "1",
    }
    url = f"http://127.0.0.1:{env['LORALOOP_SERVE_PORT']}"
    body = {"model": "base", "messages": [{"role": "user", "content": "too slow"}]}
    answers: list[httpx.Response] = []
    with launch(env, tmp_path / "platform.log", 60) as proc:
        slow = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
            )
        )
        slow.start()
        time.sleep(0.7)
        proc.send_signal(signal.SIGTERM)
        slow.join(30)
        assert proc.wait(30) == 0, (tmp_path / "platform.log").read_text()[-3000:]
    assert len(answers) == 1
    answer = answers[0]
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert answer.json()["error"]["code"] == "shutting_down"
    engine = db.create_db_engine(sqlite_url)
    with Session(engine) as session:
        row = session.get(Interaction, answer.headers["x-interaction-id"])
    engine.dispose()
    assert row is not None and row.status_code == 503 and "shutting down" in (row.error or "")


def test_sigterm_stops_a_standalone_engine_cleanly(tmp_path: Path, fake_model_dir: Path) -> None:
    env = platform_env(tmp_path, fake_model_dir, "sqlite://")
    child = Child(["engine"], env, tmp_path / "engine.log")
    engine_url = f"http://127.0.0.1:{env['LORALOOP_ENGINE_PORT']}"
    try:
        wait_until(lambda: "ready on" in child.output(), 60, "engine ready")
        assert httpx.get(f"{engine_url}/health").status_code == 200
        family = psutil.Process(child.proc.pid).children(recursive=True)
    finally:
        code = child.terminate()
    assert code == 0, child.output()
    assert not [p.pid for p in family if _alive(p)], "vLLM and what it forked are gone"
    assert _refuses(engine_url)


def test_engine_command_refuses_external_urls(tmp_path: Path, fake_model_dir: Path) -> None:
    env = {**platform_env(tmp_path, fake_model_dir, "sqlite://")}
    env["LORALOOP_ENGINE_URLS"] = '["http://127.0.0.1:9"]'
    child = Child(["engine"], env, tmp_path / "engine.log")
    assert child.proc.wait(60) == 1
    assert "would start no engine" in child.output()


def _refuses(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
