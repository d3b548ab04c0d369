"""`loraloop run` as a child process, for the demo and the real-engine tests: migrate, start,
wait until the gateway reports healthy, and stop it (SIGTERM, then kill) afterwards."""

import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

LORALOOP = str(Path(sys.executable).parent / "loraloop")


class PlatformError(RuntimeError):
    """The platform exited or did not become healthy; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def launch(env: dict[str, str], log: Path, timeout_s: float) -> Iterator[subprocess.Popen[bytes]]:
    """The running platform's process; its gateway is on LORALOOP_SERVE_PORT of `env`.
    Without LORALOOP_ENGINE_API_KEY in `env` it gets a fresh one there, so the caller's own
    retraining and evaluation can reach the engine too."""
    env.setdefault("LORALOOP_ENGINE_API_KEY", secrets.token_urlsafe(32))
    subprocess.run([LORALOOP, "db", "upgrade"], env=env, check=True, capture_output=True)
    with log.open("wb") as out:
        proc = subprocess.Popen([LORALOOP, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{env['LORALOOP_SERVE_PORT']}/health", log, timeout_s)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PlatformError(
                f"loraloop run exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise PlatformError(f"platform not healthy in {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")
