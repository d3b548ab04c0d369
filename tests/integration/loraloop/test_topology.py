"""The production topology, on loopback: two gateways, two real vLLM engines, two workers,
one PostgreSQL server and one S3 API server (moto's) of the test's own; then faults, each
under a bounded load.

It proves what an operator relies on: adapters reach the engines through the object store
(each engine host with its own cache) and a promote made through one gateway is served by the
other within its reconcile interval; an object altered in the bucket is refused by the
engines and switches nothing; killing an engine under load fails no request after
the routing window and loses no interaction, and the engine comes back with its adapters;
killing the active worker hands the schedule to the standby; restarting PostgreSQL mid-load
loses no interaction (capture spools and replays).
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from feedback.models import Interaction
from loraloop import db
from loraloop.launch import LORALOOP, free_port
from serve.replicas import rank
from serve.store import AdapterCache, S3Store, content_hash
from tests.utils import REPO
from tests.utils.adapters import make_adapter
from tests.utils.load import Load, failed
from tests.utils.postgres import PrivatePostgres
from tests.utils.processes import ENGINE_KEY, Child, healthy, leader
from tests.utils.replicas import engine_models, replica_up, wait_until
from tests.utils.s3 import CREDENTIALS, S3Server

pytestmark = pytest.mark.integration

RECONCILE_S = 1.0
CHECK_S = 1.0
LEASE_TTL_S = 3
ROUTING_WINDOW_S = 5.0  # a probe every CHECK_S that times out after 2 s, with margin
BOOT_S = 600
BUCKET = "topology"
BODY = {
    "model": "support",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 8,
    "temperature": 0,
}


@dataclass
class Topology:
    pg: PrivatePostgres
    engines: list[Child]
    engine_urls: list[str]
    gateways: list[Child]
    gateway_urls: list[str]
    workers: list[Child]
    store: Path
    model_dir: Path
    s3: S3Store


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("topology")
    store = tmp / "adapters"
    store.mkdir()
    pg = PrivatePostgres()
    pg.start()
    s3_server = S3Server(tmp / "moto.log").start()
    env = {
        **os.environ,
        **CREDENTIALS,
        "LORALOOP_STORE_URL": f"s3://{BUCKET}/adapters",
        "LORALOOP_STORE_ENDPOINT_URL": s3_server.url,
        "LORALOOP_DB_URL": pg.url,
        "LORALOOP_MODEL_PATH": str(model_dir),
        "LORALOOP_SERVE_ADAPTER_STORE": str(store),
        "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
        "LORALOOP_ENGINE_LOG_DIR": str(tmp / "logs"),
        "LORALOOP_ENGINE_API_KEY": ENGINE_KEY,
        "LORALOOP_SERVE_REQUIRE_KEYS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([LORALOOP, "db", "upgrade"], env=env, check=True, capture_output=True)
    children: list[Child] = []
    try:
        engine_ports = [free_port(), free_port()]
        engines = [
            Child(
                ["engine"],
                {
                    **env,
                    "LORALOOP_ENGINE_PORT": str(p),
                    "LORALOOP_STORE_CACHE_DIR": str(tmp / f"engine-{k}-cache"),  # a host each
                },
                tmp / f"engine-{k}.log",
            )
            for k, p in enumerate(engine_ports)
        ]
        children += engines
        for engine in engines:
            wait_until(lambda e=engine: "ready on" in e.output() or _exited(e), BOOT_S, "engine")
            assert not _exited(engine), engine.output()[-3000:]
        engine_urls = [f"http://127.0.0.1:{p}" for p in engine_ports]
        gateway_ports = [free_port(), free_port()]
        gateways = [
            Child(
                ["run"],
                {
                    **env,
                    "LORALOOP_SERVE_PORT": str(p),
                    "LORALOOP_ENGINE_URLS": json.dumps(engine_urls),
                    "LORALOOP_WORKER_IN_GATEWAY": "false",
                    "LORALOOP_SERVE_RECONCILE_INTERVAL_S": str(RECONCILE_S),
                    "LORALOOP_SERVE_REPLICA_CHECK_INTERVAL_S": str(CHECK_S),
                    "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(tmp / f"spool-{k}.jsonl"),
                    "LORALOOP_FEEDBACK_CAPTURE_RETRY_INTERVAL_S": "0.5",
                },
                tmp / f"gateway-{k}.log",
            )
            for k, p in enumerate(gateway_ports)
        ]
        children += gateways
        gateway_urls = [f"http://127.0.0.1:{p}" for p in gateway_ports]
        for url, gateway in zip(gateway_urls, gateways, strict=True):
            wait_until(lambda u=url, g=gateway: healthy(u) or _exited(g), 120, "gateway")
            assert not _exited(gateway), gateway.output()[-3000:]
        worker_env = {**env, "LORALOOP_WORKER_LEASE_TTL_S": str(LEASE_TTL_S)}
        workers = []
        for k in range(2):
            workers.append(Child(["worker"], worker_env, tmp / f"worker-{k}.log"))
            children.append(workers[-1])
            wait_until(lambda w=workers[-1]: "worker " in w.output(), 60, "worker up")
        with pytest.MonkeyPatch.context() as patch:  # the test's own client of the bucket
            for name, value in CREDENTIALS.items():
                patch.setenv(name, value)
            s3 = S3Store(
                f"s3://{BUCKET}/adapters",
                AdapterCache(tmp / "test-cache", 2**30),
                endpoint_url=s3_server.url,
            )
            yield Topology(
                pg, engines, engine_urls, gateways, gateway_urls, workers, store, model_dir, s3
            )
        for child in [*gateways, *workers, *engines]:
            if child.proc.poll() is None:
                assert child.terminate(120) == 0, child.output()[-3000:]
    finally:
        for child in children:
            if child.proc.poll() is None:
                child.kill()
        pg.stop()
        s3_server.stop()


def test_a_promote_through_one_gateway_is_served_by_the_other(topology: Topology) -> None:
    a, b = topology.gateway_urls
    adapter = topology.store / "topology-1"
    make_adapter(topology.model_dir, adapter, seed=3)
    registered = httpx.post(
        f"{a}/admin/adapters", json={"name": "support", "path": str(adapter)}, timeout=300
    )
    assert registered.status_code == 201, registered.text
    time.sleep(RECONCILE_S * 2)  # B has seen the alias, with no production version yet
    assert httpx.post(f"{b}/v1/chat/completions", json=BODY, timeout=60).status_code == 404

    promoted = httpx.post(f"{a}/admin/aliases/support/promote", json={"version": 1}, timeout=300)
    assert promoted.status_code == 200, promoted.text
    took = wait_until(
        lambda: httpx.post(f"{b}/v1/chat/completions", json=BODY, timeout=60).status_code == 200,
        RECONCILE_S + 10,
        "gateway B serves the promoted version",
    )
    print(f"promote through A served by B after {took:.2f} s (reconcile {RECONCILE_S} s)")
    version = registered.json()
    assert version["path"].startswith(f"s3://{BUCKET}/adapters/support/")
    digest = version["path"].rsplit("/", 1)[-1]
    for k, url in enumerate(topology.engine_urls):
        assert version["engine_name"] in engine_models(url), "loaded on every replica"
        copy = topology.store.parent / f"engine-{k}-cache" / digest
        assert content_hash(copy) == digest, "loaded from the host's checked copy"


def test_an_object_altered_in_the_bucket_is_refused_and_switches_nothing(
    topology: Topology,
) -> None:
    a, b = topology.gateway_urls
    adapter = topology.store / "topology-2"
    make_adapter(topology.model_dir, adapter, seed=4)
    digest = content_hash(adapter)
    topology.s3.publish(adapter, "support", digest)  # as the gateway will, then tampered with
    topology.s3.client.put_object(
        Bucket=BUCKET, Key=f"adapters/support/{digest}/adapter_model.safetensors", Body=b"x" * 64
    )
    registered = httpx.post(
        f"{a}/admin/adapters", json={"name": "support", "path": str(adapter)}, timeout=300
    )
    assert registered.status_code == 400, registered.text
    message = registered.json()["error"]["message"]
    assert "adapter_model.safetensors does not match" in message, message
    promoted = httpx.post(f"{a}/admin/aliases/support/promote", json={"version": 2}, timeout=300)
    assert promoted.status_code == 400, promoted.text
    aliases = httpx.get(f"{a}/admin/aliases", timeout=30).json()
    assert [x["production_version"] for x in aliases if x["name"] == "support"] == [1]
    assert httpx.post(f"{b}/v1/chat/completions", json=BODY, timeout=60).status_code == 200
    for url in topology.engine_urls:
        assert not any(digest[:12] in name for name in engine_models(url))


def test_killing_an_engine_under_load_fails_nothing_after_the_routing_window(
    topology: Topology,
) -> None:
    # Affinity routing sends the alias's traffic to its home replica: that is the one killed.
    victim = topology.engine_urls.index(rank(str(BODY["model"]), topology.engine_urls)[0])
    survivor = topology.engine_urls[1 - victim]
    before = _count(topology)
    load = Load(topology.gateway_urls, BODY, clients=4, max_requests=400, max_seconds=90).start()
    time.sleep(5)
    vllm = psutil.Process(topology.engines[victim].proc.pid).children()[0]
    os.killpg(vllm.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(10)
    outcomes = load.stop()
    after_kill = [o for o in outcomes if o.at >= killed_at]
    print(
        f"engine kill: {len(outcomes)} requests, {len(after_kill)} after the kill, "
        f"{len(failed(outcomes))} failed ({len(failed(outcomes, killed_at))} after the kill)"
    )
    assert after_kill, "the load went on after the kill"
    assert failed(outcomes, after=killed_at + ROUTING_WINDOW_S) == []
    ids = [o.interaction_id for o in outcomes]
    assert None not in ids, "every request got an answer from a gateway"
    wait_until(lambda: _count(topology) == before + len(outcomes), 30, "all captured")
    assert _stored(topology, ids) == len(ids), "no interaction lost or doubled"
    for url in topology.gateway_urls:
        states = {r["url"]: r["state"] for r in httpx.get(f"{url}/health").json()["replicas"]}
        assert states[survivor] == "up"

    # The engine's supervisor restarts vLLM; the gateways put it back only with its adapters.
    back = topology.engine_urls[victim]
    wait_until(
        lambda: all(replica_up(g, back) for g in topology.gateway_urls), BOOT_S, "engine back"
    )
    engine_name = httpx.get(f"{topology.gateway_urls[0]}/admin/adapters").json()[0]["engine_name"]
    assert engine_name in engine_models(back)


def test_killing_the_active_worker_hands_the_schedule_over(topology: Topology) -> None:
    url = topology.pg.url
    wait_until(lambda: leader(url) is not None, LEASE_TTL_S * 3, "a worker leads")
    owners = {w.owner: w for w in topology.workers}
    active = owners[leader(url).owner]  # type: ignore[union-attr]
    standby = next(w for w in topology.workers if w is not active)
    active.kill()
    took = wait_until(
        lambda: (row := leader(url)) is not None and row.owner == standby.owner,
        LEASE_TTL_S * 3 + 5,
        "the standby took the lease",
    )
    wait_until(lambda: "scheduler active" in standby.output(), 10, "the standby schedules")
    print(f"worker failover after {took:.1f} s (lease {LEASE_TTL_S} s)")


def test_restarting_postgres_mid_load_loses_no_interaction(topology: Topology) -> None:
    before = _count(topology)
    load = Load(topology.gateway_urls, BODY, clients=4, max_requests=400, max_seconds=60).start()
    time.sleep(3)
    topology.pg.restart(down_s=3)
    time.sleep(4)
    outcomes = load.stop()
    assert failed(outcomes) == [], "the hot path does not wait on the database"
    ids = [o.interaction_id for o in outcomes]
    wait_until(lambda: _count(topology) == before + len(outcomes), 60, "spools replayed")
    assert _stored(topology, ids) == len(ids)
    spooled = sum("spooling" in g.output() for g in topology.gateways)
    assert spooled, "the outage reached the capture writers (so the spool was exercised)"
    print(f"postgres restart: {len(outcomes)} requests, 0 failed, 0 lost")


def _count(topology: Topology) -> int:
    engine = db.create_db_engine(topology.pg.url)
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(Interaction)).one())
    finally:
        engine.dispose()


def _stored(topology: Topology, ids: list[str | None]) -> int:
    engine = db.create_db_engine(topology.pg.url)
    try:
        with Session(engine) as session:
            query = select(func.count()).where(col(Interaction.id).in_(ids))
            return int(session.exec(query).one())
    finally:
        engine.dispose()


def _exited(child: Child) -> bool:
    return child.proc.poll() is not None
