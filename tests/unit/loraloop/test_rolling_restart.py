"""A rolling restart of two gateways behind the real nginx load balancer loses no request.

The engine is the fake one (this is about gateways and the load balancer); the gateways
are real `loraloop run` processes and nginx runs docker/nginx.conf itself.
"""

import json
import os
import time
from pathlib import Path

import httpx

from loraloop.launch import free_port
from tests.conftest import REPO
from tests.utils.load import Load, failed
from tests.utils.nginx import Nginx
from tests.utils.processes import Child
from tests.utils.replicas import wait_until

BODY = {"model": "base", "messages": [{"role": "user", "content": "hello"}]}


def gateway(env: dict[str, str], port: int, log: Path) -> Child:
    child = Child(["run"], {**env, "LORALOOP_SERVE_PORT": str(port)}, log)
    wait_until(lambda: _healthy(port) or child.proc.poll() is not None, 60, "gateway up")
    assert child.proc.poll() is None, child.output()
    return child


def test_rolling_restart_behind_nginx_loses_no_request(
    tmp_path: Path, fake_model_dir: Path, sqlite_url: str
) -> None:
    engine_port = free_port()
    env = {
        **os.environ,
        "LORALOOP_DB_URL": sqlite_url,
        "LORALOOP_MODEL_PATH": str(fake_model_dir),
        "LORALOOP_MODEL_NAME": "base",
        "LORALOOP_ENGINE_ENTRYPOINT": "tests.fake_engine",
        "LORALOOP_ENGINE_PORT": str(engine_port),
        "LORALOOP_ENGINE_LOG_DIR": str(tmp_path / "logs"),
        "LORALOOP_SERVE_ADAPTER_STORE": str(tmp_path / "adapters"),
        "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "LORALOOP_WORKER_IN_GATEWAY": "false",
        "FAKE_ENGINE_DELAY_S": "0.05",
        "PYTHONUNBUFFERED": "1",
    }
    engine = Child(["engine"], env, tmp_path / "engine.log")
    wait_until(lambda: "ready on" in engine.output(), 60, "engine up")
    gateway_env = {**env, "LORALOOP_ENGINE_URLS": json.dumps([f"http://127.0.0.1:{engine_port}"])}
    ports = [free_port(), free_port()]
    gateways = [
        gateway(gateway_env, p, tmp_path / f"gateway-{k}-0.log") for k, p in enumerate(ports)
    ]
    lb = Nginx([f"127.0.0.1:{p}" for p in ports], free_port(), tmp_path)
    try:
        load = Load([lb.url], BODY, clients=4, max_requests=5000, max_seconds=120).start()
        time.sleep(2)
        for k, port in enumerate(ports):
            assert gateways[k].terminate(60) == 0, gateways[k].output()
            gateways[k] = gateway(gateway_env, port, tmp_path / f"gateway-{k}-1.log")
            time.sleep(2)
        outcomes = load.stop()
        lost = failed(outcomes)
        print(f"rolling restart: {len(outcomes)} requests through nginx, {len(lost)} failed")
        assert len(outcomes) > 100, "the load ran through both restarts"
        assert lost == [], lost[:5]
    finally:
        lb.stop()
        for child in [*gateways, engine]:
            child.terminate(60)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
