"""A rolling restart of two gateways behind the real nginx load balancer loses no request.

The engine is the fake one (this is about gateways and the load balancer); the gateways
are real `loraloop run` processes and nginx runs docker/nginx.conf itself.
"""

import json
import time
from pathlib import Path

from sqlalchemy import create_engine
from sqlmodel import Session

from loraloop.launch import free_port
from serve.auth import create_key
from tests.utils.load import Load, failed
from tests.utils.nginx import Nginx
from tests.utils.processes import Child, fake_platform_env, healthy
from tests.utils.replicas import wait_until

BODY = {"model": "base", "messages": [{"role": "user", "content": "hello"}]}


def gateway(env: dict[str, str], port: int, log: Path) -> Child:
    child = Child(["run"], {**env, "LORALOOP_SERVE_PORT": str(port)}, log)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(url) or child.proc.poll() is not None, 60, "gateway up")
    assert child.proc.poll() is None, child.output()
    return child


def test_rolling_restart_behind_nginx_loses_no_request(
    tmp_path: Path, fake_model_dir: Path, sqlite_url: str
) -> None:
    env = {
        **fake_platform_env(tmp_path, fake_model_dir, sqlite_url),
        "FAKE_ENGINE_DELAY_S": "0.5",
        "LORALOOP_SERVE_RATE_LIMIT_PER_S": "0",  # this measures restarts, not the limiter
    }
    engine = create_engine(sqlite_url)
    with Session(engine) as session:  # through a proxy, open mode trusts nobody: a key
        key = {"Authorization": f"Bearer {create_key(session, 'client', 'load')}"}
    engine.dispose()
    engine_port = int(env["LORALOOP_ENGINE_PORT"])
    engine_child = Child(["engine"], env, tmp_path / "engine.log")
    wait_until(lambda: "ready on" in engine_child.output(), 60, "engine up")
    gateway_env = {**env, "LORALOOP_ENGINE_URLS": json.dumps([f"http://127.0.0.1:{engine_port}"])}
    ports = [free_port(), free_port()]
    gateways = [
        gateway(gateway_env, p, tmp_path / f"gateway-{k}-0.log") for k, p in enumerate(ports)
    ]
    lb = Nginx([f"127.0.0.1:{p}" for p in ports], free_port(), tmp_path)
    try:
        load = Load(
            [lb.url], BODY, clients=4, max_requests=5000, max_seconds=120, headers=key
        ).start()
        time.sleep(2)
        first_stop = time.monotonic()
        for k, port in enumerate(ports):
            assert gateways[k].terminate(60) == 0, gateways[k].output()
            gateways[k] = gateway(gateway_env, port, tmp_path / f"gateway-{k}-1.log")
            time.sleep(2)
        back = time.monotonic() - 2
        outcomes = load.stop()
        lost = failed(outcomes)
        print(f"rolling restart: {len(outcomes)} requests through nginx, {len(lost)} failed")
        assert any(o.at < first_stop for o in outcomes), "the load ran before the restarts"
        assert any(o.at > back for o in outcomes), "and after both"
        assert lost == [], lost[:5]
    finally:
        lb.stop()
        for child in [*gateways, engine_child]:
            child.terminate(60)
