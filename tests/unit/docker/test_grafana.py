"""The Grafana dashboard in docker/ only asks for metrics a gateway exports: each metric
named in a panel expression is in /metrics of a live gateway that has served traffic."""

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

DASHBOARD = Path(__file__).resolve().parents[3] / "docker" / "grafana" / "loraloop.json"
METRIC = re.compile(r"\bloraloop_[a-z_]+\b")


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_every_expression_names_an_exported_metric(gateway: TestClient) -> None:
    reply = gateway.post(
        "/v1/chat/completions",
        json={"model": "base", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert reply.status_code == 200
    plain = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}
    assert gateway.post("/v1/chat/completions", json=plain).status_code == 200
    assert gateway.post("/v1/chat/completions", json={"model": "nope", "messages": []}).status_code
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in gateway.get("/metrics").text.splitlines()
        if line and not line.startswith("#")
    }
    named = {m for expr in expressions() for m in METRIC.findall(expr)}
    assert len(named) >= 12, named
    assert named - exported == set(), f"not exported by the gateway: {named - exported}"


def test_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("requests", "error", "latency", "first token", "capture queue"):
        assert topic in titles, topic
    for expr in expressions():
        assert expr.count("(") == expr.count(")"), expr
