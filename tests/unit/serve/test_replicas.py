"""Routing across engine replicas: health-aware, LoRA-aware, one retry, recovery with reload."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serve.engine import EngineManager
from serve.replicas import NoReplica, ReplicaPool
from tests.unit.serve.test_adapters import engine_name, register
from tests.utils.adapters import make_adapter_dir
from tests.utils.replicas import (
    engine_models,
    fake_replica,
    running_replicas,
    served_by,
    wait_until,
)

BODY = {"model": "support", "messages": [{"role": "user", "content": "hi"}]}


def test_choose_prefers_holders_then_the_least_busy_and_tries_all_when_all_are_down() -> None:
    pool = ReplicaPool(["http://a", "http://b", "http://c"], httpx.AsyncClient())
    pool.begin("http://a")
    assert pool.choose() in {"http://b", "http://c"}, "least outstanding first"
    assert pool.choose(holding={"http://a"}) == "http://a", "a replica with the adapter wins"
    pool.mark_down("http://a", "refused")
    assert pool.choose(holding={"http://a"}) in {"http://b", "http://c"}, "never a down one"
    pool.begin("http://b")
    assert pool.choose() == "http://c"
    assert pool.choose(exclude={"http://c"}) == "http://b"
    for url in ("http://b", "http://c"):
        pool.mark_down(url, "refused")
    assert pool.choose(exclude={"http://a"}) in {"http://b", "http://c"}, "all down: try anyway"
    with pytest.raises(NoReplica):
        pool.choose(exclude=pool.urls)
    assert [r["state"] for r in pool.status()] == ["down", "down", "down"]


@pytest.fixture
def replicas(tmp_path: Path, fake_model_dir: Path) -> Iterator[list[EngineManager]]:
    with running_replicas(tmp_path, fake_model_dir, 2) as started:
        yield started


def health(gateway: TestClient) -> dict[str, str]:
    body = gateway.get("/health").json()
    return {r["url"]: r["state"] for r in body["replicas"]}


def test_a_dead_replica_leaves_rotation_without_failed_requests_and_returns_reloaded(
    sqlite_url: str,
    make_gateway: Callable[..., TestClient],
    replicas: list[EngineManager],
    tmp_path: Path,
    fake_model_dir: Path,
) -> None:
    urls = [r.urls[0] for r in replicas]
    # Health checks only when the test says so: the request path alone must notice the death.
    # Least busy: sequential requests alternate, so both replicas serve the alias.
    gateway = make_gateway(
        sqlite_url, engine_urls=urls, replica_check_interval_s=3600, routing="least_busy"
    )
    pool: ReplicaPool = gateway.app.state.replicas  # type: ignore[attr-defined]
    store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
    register(gateway, "support", make_adapter_dir(store, "r1"))
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    name = engine_name(gateway, "support@1")

    before = [gateway.post("/v1/chat/completions", json=BODY) for _ in range(10)]
    assert [r.status_code for r in before] == [200] * 10
    assert set(served_by(gateway, [r.json()["interaction_id"] for r in before])) == set(urls)

    dead_port = replicas[1].settings.port
    replicas[1].stop(timeout=5)
    # Two streams first: round-robin among equals sends one of them to the dead replica.
    streams = [gateway.post("/v1/chat/completions", json={**BODY, "stream": True}) for _ in "ab"]
    assert [r.status_code for r in streams] == [200, 200], "a refused stream is retried"
    assert all(r.text.rstrip().endswith("data: [DONE]") for r in streams)
    during = [gateway.post("/v1/chat/completions", json=BODY) for _ in range(20)]
    assert [r.status_code for r in during] == [200] * 20
    ids = [r.headers["x-interaction-id"] for r in streams] + [
        r.json()["interaction_id"] for r in during
    ]
    assert served_by(gateway, ids) == {urls[0]: 22}
    assert health(gateway) == {urls[0]: "up", urls[1]: "down"}
    body = gateway.get("/health")
    assert body.status_code == 200 and body.json()["status"] == "degraded"
    metrics = gateway.get("/metrics").text
    assert "loraloop_engine_retries_total 1.0" in metrics
    assert f'loraloop_engine_replica_up{{replica="{urls[1]}"}} 0.0' in metrics

    replicas[1] = fake_replica(tmp_path, fake_model_dir, port=dead_port)  # back, empty
    assert name not in engine_models(urls[1])
    gateway.portal.call(pool.check_all)  # type: ignore[union-attr]
    assert health(gateway)[urls[1]] == "up"
    assert name in engine_models(urls[1]), "adapters in use are loaded before it serves"
    after = [gateway.post("/v1/chat/completions", json=BODY) for _ in range(10)]
    assert set(served_by(gateway, [r.json()["interaction_id"] for r in after])) == set(urls)


def test_a_replica_that_refuses_an_adapter_stops_the_switch(
    sqlite_url: str,
    make_gateway: Callable[..., TestClient],
    tmp_path: Path,
    fake_model_dir: Path,
) -> None:
    """Down is not blamed; a live replica that cannot load the version is: nothing switches."""
    good = fake_replica(tmp_path, fake_model_dir)
    refusing = fake_replica(tmp_path, fake_model_dir, mode="refuse-lora")
    try:
        gateway = make_gateway(sqlite_url, engine_urls=[good.urls[0], refusing.urls[0]])
        store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
        refused = register(gateway, "support", make_adapter_dir(store, "m1"))
        assert refused.status_code == 400
        assert "support@1 is registered, but not loaded" in refused.json()["error"]["message"]
        assert "refuses to load adapters" in refused.json()["error"]["message"]
        promote = gateway.post("/admin/aliases/support/promote", json={"version": 1})
        assert promote.status_code == 400
        assert gateway.get("/admin/aliases").json() == [], "no alias points at it"
    finally:
        good.stop(timeout=5)
        refusing.stop(timeout=5)


def test_a_replica_down_at_start_is_reported_then_joins(
    sqlite_url: str,
    make_gateway: Callable[..., TestClient],
    replicas: list[EngineManager],
    tmp_path: Path,
    fake_model_dir: Path,
) -> None:
    from loraloop.launch import free_port

    late_port = free_port()
    late_url = f"http://127.0.0.1:{late_port}"
    live = replicas[0].urls[0]
    gateway = make_gateway(sqlite_url, engine_urls=[live, late_url], replica_check_interval_s=0.2)
    assert health(gateway) == {live: "up", late_url: "down"}
    store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
    assert register(gateway, "support", make_adapter_dir(store, "late")).status_code == 201
    assert gateway.post("/admin/aliases/support/promote", json={"version": 1}).status_code == 200

    late = fake_replica(tmp_path, fake_model_dir, port=late_port)
    try:
        wait_until(lambda: health(gateway)[late_url] == "up", 10, "late replica joins")
        assert engine_name(gateway, "support@1") in engine_models(late_url)
        assert gateway.get("/health").json()["status"] == "ok"
    finally:
        late.stop(timeout=5)


def test_a_replica_that_sends_no_first_byte_in_time_is_passed_over(
    sqlite_url: str,
    make_gateway: Callable[..., TestClient],
    tmp_path: Path,
    fake_model_dir: Path,
) -> None:
    """An engine that accepts the request but does not start answering within
    LORALOOP_SERVE_FIRST_BYTE_TIMEOUT_S is treated as unreachable: the request goes once
    to another replica, and the client sees one answer."""
    stuck = fake_replica(tmp_path, fake_model_dir, delay_s=5)
    good = fake_replica(tmp_path, fake_model_dir)
    try:
        urls = [stuck.urls[0], good.urls[0]]
        gateway = make_gateway(
            sqlite_url, engine_urls=urls, replica_check_interval_s=3600, first_byte_timeout_s=0.5
        )
        base = {**BODY, "model": "base"}
        answers = [gateway.post("/v1/chat/completions", json=base) for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        assert served_by(gateway, [a.json()["interaction_id"] for a in answers]) == {urls[1]: 4}
        assert "loraloop_engine_retries_total 1.0" in gateway.get("/metrics").text
    finally:
        stuck.stop(timeout=5)
        good.stop(timeout=5)
