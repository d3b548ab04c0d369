"""One real platform per test session: `loraloop run` with the real vLLM engine.

Booting vLLM costs about a minute on 2 cores, so every integration test shares it.
At the end the platform is stopped with SIGTERM and must leave no process behind.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from loraloop.launch import free_port, launch
from serve.model_store import check_model_dir
from serve.settings import ModelSettings
from tests.utils import REPO
from tests.utils.processes import ENGINE_KEY

BOOT_TIMEOUT_S = 600


@dataclass
class Platform:
    gateway_url: str
    engine_url: str
    model: str
    model_dir: Path
    log: Path
    adapter_store: Path
    db_url: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    path = ModelSettings().model_dir()
    check_model_dir(path)  # names the path and `loraloop models pull` when missing
    return path.resolve()


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("platform")
    gateway_port, engine_port = free_port(), free_port()
    env = {
        **os.environ,
        "LORALOOP_DB_URL": f"sqlite:///{tmp / 'loraloop.db'}",
        "LORALOOP_SERVE_PORT": str(gateway_port),
        "LORALOOP_ENGINE_PORT": str(engine_port),
        "LORALOOP_ENGINE_LOG_DIR": str(tmp / "logs"),
        "LORALOOP_MODEL_PATH": str(model_dir),
        "LORALOOP_SERVE_ADAPTER_STORE": str(tmp / "adapters"),
        "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
        "LORALOOP_SERVE_RECONCILE_INTERVAL_S": "1",
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(tmp / "spool.jsonl"),
        "LORALOOP_SERVE_REQUIRE_KEYS": "false",
        "LORALOOP_ENGINE_API_KEY": ENGINE_KEY,
    }
    (tmp / "adapters").mkdir()
    log = tmp / "platform.log"
    with launch(env, log, BOOT_TIMEOUT_S) as proc:
        family = psutil.Process(proc.pid).children(recursive=True)
        yield Platform(
            f"http://127.0.0.1:{gateway_port}",
            f"http://127.0.0.1:{engine_port}",
            model_dir.name,
            model_dir,
            log,
            tmp / "adapters",
            env["LORALOOP_DB_URL"],
            env,
        )
    leftovers = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], f"processes left after shutdown: {leftovers}"
    assert proc.returncode == 0, log.read_text()[-3000:]
