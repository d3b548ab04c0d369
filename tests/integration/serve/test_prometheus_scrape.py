"""A real Prometheus scrapes the session's live gateway (real engine) under a little load:
every expression of the Grafana dashboard returns data, and every alerting rule evaluates
on the live series without an error."""

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Platform
from tests.utils.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[3] / "docker" / "grafana" / "loraloop.json"


@pytest.fixture
def prometheus(platform: Platform, tmp_path: Path) -> Iterator[PrometheusServer]:
    target = platform.gateway_url.removeprefix("http://")
    server = PrometheusServer(tmp_path, "loraloop-gateway", [target]).start()
    yield server
    server.stop()


def traffic(platform: Platform, seconds: float) -> None:
    """Plain and streamed chats on the base model, and one refused request, for `seconds`."""
    chat = {"model": platform.model, "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4}  # fmt: skip
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=platform.gateway_url, timeout=120) as client:
        assert client.post("/v1/chat/completions", json={**chat, "model": "nope"}).status_code
        while time.monotonic() < deadline:
            assert client.post("/v1/chat/completions", json=chat).status_code == 200
            streamed = client.post("/v1/chat/completions", json={**chat, "stream": True})
            assert streamed.status_code == 200


def test_every_dashboard_expression_returns_data_from_a_live_gateway(
    platform: Platform, prometheus: PrometheusServer
) -> None:
    deadline = time.monotonic() + 30
    while not prometheus.query('up{job="loraloop-gateway"} == 1'):
        assert time.monotonic() < deadline, "prometheus never scraped the gateway"
        time.sleep(0.5)
    traffic(platform, seconds=6)
    time.sleep(3)  # two more scrapes after the last request
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    empty = []
    for expr in exprs:
        result = prometheus.query(expr.replace("$__rate_interval", "30s"))
        values = [float(r["value"][1]) for r in result]
        if not any(not math.isnan(v) for v in values):
            empty.append(expr)
    assert empty == [], f"no data for: {empty}"
    rules = prometheus.rules()
    assert len(rules) >= 13
    broken = {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok"}
    assert broken == {}, broken
