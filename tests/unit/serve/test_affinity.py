"""Affinity routing for many adapters: each alias has home replicas (rendezvous hashing) that
load its versions ahead of requests and take its traffic, bounded by load so a hot alias
spills to its next-ranked replica; loads are counted and timed on /metrics."""

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serve.engine import EngineManager
from serve.replicas import ReplicaPool, rank
from tests.utils.adapters import make_adapter_dir
from tests.utils.replicas import engine_models, running_replicas, served_by

URLS = [f"http://r{i}" for i in range(4)]


def test_rendezvous_ranks_spread_keys_evenly_and_move_few_when_a_replica_leaves() -> None:
    keys = [f"alias-{i}" for i in range(2000)]
    firsts = Counter(rank(k, URLS)[0] for k in keys)
    assert set(firsts) == set(URLS)
    assert all(350 < n < 650 for n in firsts.values()), firsts  # 500 each on average
    assert [rank(k, URLS) for k in keys[:50]] == [rank(k, URLS) for k in keys[:50]], "stable"
    fewer = URLS[:3]
    moved = [k for k in keys if rank(k, URLS)[0] != rank(k, fewer)[0]]
    assert {rank(k, URLS)[0] for k in moved} == {URLS[3]}, "only the leaver's keys move"


def test_bounded_loads_keep_every_replica_within_the_factor_and_spill_in_rank_order() -> None:
    pool = ReplicaPool(URLS, httpx.AsyncClient(), load_factor=1.25, min_load=2)
    order = rank("support", URLS)
    assert pool.choose(key="support") == order[0], "an idle pool sends a key to its home"
    chosen = []
    for m in range(1, 101):
        url = pool.choose(key="support")
        pool.begin(url)
        chosen.append(url)
        loads = [r.outstanding for r in pool.replicas.values()]
        assert max(loads) <= max(2, math.ceil(1.25 * m / len(URLS))), (m, loads)
    assert chosen[:2] == [order[0], order[0]], "the home takes a key's first requests"
    assert chosen.index(order[1]) < chosen.index(order[2]) < chosen.index(order[3])
    idle = ReplicaPool(URLS, httpx.AsyncClient())
    idle.mark_down(order[0], "refused")
    assert idle.choose(key="support") == order[1], "a home that is down: the next in rank"
    least = ReplicaPool(URLS, httpx.AsyncClient(), load_factor=None)
    least.begin(URLS[0])
    assert least.choose(key="support") != URLS[0], "least_busy ignores the key"


@pytest.fixture
def three(tmp_path: Path, fake_model_dir: Path) -> Iterator[list[EngineManager]]:
    with running_replicas(tmp_path, fake_model_dir, 3) as started:
        yield started


def loads(metrics: str, alias: str) -> dict[str, float]:
    pattern = rf'loraloop_adapter_loads_total{{alias="{alias}",replica="([^"]+)"}} (\S+)'
    return {url: float(n) for url, n in re.findall(pattern, metrics)}


def test_each_alias_lives_on_its_home_and_a_spill_loads_on_demand(
    sqlite_url: str, make_gateway: Callable[..., TestClient], three: list[EngineManager]
) -> None:
    urls = [r.urls[0] for r in three]
    gateway = make_gateway(
        sqlite_url, engine_urls=urls, replica_check_interval_s=3600, adapter_replicas=1
    )
    pool: ReplicaPool = gateway.app.state.replicas  # type: ignore[attr-defined]
    store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
    aliases = [f"customer-{i}" for i in range(9)]
    names = {}
    for alias in aliases:
        made = gateway.post("/admin/adapters", json={"name": alias,
                            "path": str(make_adapter_dir(store, alias))})  # fmt: skip
        assert made.status_code == 201, made.text
        names[alias] = made.json()["engine_name"]
        assert (
            gateway.post(f"/admin/aliases/{alias}/promote", json={"version": 1}).status_code == 200
        )
    held = {url: engine_models(url) for url in urls}
    for alias in aliases:
        home = pool.homes(alias, 1)[0]
        assert [u for u in urls if names[alias] in held[u]] == [home], "loaded on its home only"
        ids = [
            gateway.post("/v1/chat/completions", json={"model": alias, "messages": [
                {"role": "user", "content": "hi"}]}).json()["interaction_id"]
            for _ in range(3)
        ]  # fmt: skip
        assert served_by(gateway, ids) == {home: 3}, alias
    assert len({pool.homes(a, 1)[0] for a in aliases}) > 1, "the aliases spread over replicas"
    metrics = gateway.get("/metrics").text
    assert loads(metrics, aliases[0]) == {pool.homes(aliases[0], 1)[0]: 1.0}
    assert f'loraloop_adapter_load_seconds_count{{alias="{aliases[0]}"}} 1.0' in metrics

    home, second = pool.homes(aliases[0], 2)
    pool.mark_down(home, "test: out of rotation")
    answer = gateway.post("/v1/chat/completions", json={"model": aliases[0], "messages": [
        {"role": "user", "content": "hi"}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert served_by(gateway, [answer.json()["interaction_id"]]) == {second: 1}
    assert names[aliases[0]] in engine_models(second), "loaded on demand where it spilled"
    assert loads(gateway.get("/metrics").text, aliases[0]) == {home: 1.0, second: 1.0}
    held_by = re.findall(r'loraloop_adapters_loaded{replica="([^"]+)"} (\S+)', metrics)
    assert sum(float(n) for _, n in held_by) == len(aliases), "one copy of each, before"
