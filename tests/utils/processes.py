"""`loraloop` commands as child processes a test can kill, and the lease they contend for."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from sqlmodel import Session

from feedback.lease import LeaderLease, current_leader
from loraloop import db
from loraloop.launch import LORALOOP, free_port

REPO = Path(__file__).resolve().parents[2]


class Child:
    """One `loraloop ...` process with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [LORALOOP, *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def owner(self) -> str:
        """How the lease names this process (see feedback.lease.default_owner)."""
        return f"{os.uname().nodename}:{self.proc.pid}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"no exit {timeout:.0f} s after SIGTERM:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash."""
        self.proc.kill()
        self.proc.wait()


def leader(url: str) -> LeaderLease | None:
    engine = db.create_db_engine(url)
    try:
        with Session(engine) as session:
            row = current_leader(session, "scheduler")
            if row is not None:
                session.expunge(row)
            return row
    finally:
        engine.dispose()


def healthy(url: str) -> bool:
    """True when `url`/health answers 200 now."""
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float, what: str
) -> None:
    """Until `url` answers 200; the log's tail as the failure when the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not become ready in {timeout:.0f} s")


ENGINE_KEY = "test-engine-key"
ENGINE_AUTH = {"Authorization": f"Bearer {ENGINE_KEY}"}


def fake_platform_env(tmp_path: Path, model_dir: Path, db_url: str) -> dict[str, str]:
    """Settings for `loraloop run` / `engine` on the fake engine, every path under tmp_path."""
    return {
        **os.environ,
        "LORALOOP_DB_URL": db_url,
        "LORALOOP_SERVE_PORT": str(free_port()),
        "LORALOOP_ENGINE_PORT": str(free_port()),
        "LORALOOP_ENGINE_ENTRYPOINT": "tests.fake_engine",
        "LORALOOP_ENGINE_LOG_DIR": str(tmp_path / "logs"),
        "LORALOOP_MODEL_PATH": str(model_dir),
        "LORALOOP_MODEL_NAME": "base",
        "LORALOOP_SERVE_ADAPTER_STORE": str(tmp_path / "adapters"),
        "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "LORALOOP_WORKER_IN_GATEWAY": "false",
        "LORALOOP_SERVE_REQUIRE_KEYS": "false",
        "LORALOOP_ENGINE_API_KEY": ENGINE_KEY,
        "LORALOOP_ENGINE_API_KEY_FILE": str(tmp_path / "engine.key"),
        "PYTHONUNBUFFERED": "1",
    }
