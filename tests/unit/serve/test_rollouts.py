"""Rollouts decided by live evidence, on a live gateway with its worker: a candidate that
end users rate worse is rolled back by itself, a better one is promoted through every
step, with no failed client request; canary assignment sticks to the end user."""

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loraloop.cli import app as cli
from loraloop.settings import Settings
from tests.utils.adapters import make_adapter_dir
from tests.utils.clients import JSON
from tests.utils.users import simulate


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver for alert webhooks, collecting what was posted."""
    posted: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", posted
    server.shutdown()


def register(http: httpx.Client | TestClient, store: Path, name: str) -> tuple[int, str]:
    out = http.post(
        "/admin/adapters", json={"name": "support", "path": str(make_adapter_dir(store, name))}
    )
    assert out.status_code == 201, out.text
    return out.json()["version"], out.json()["engine_name"]


def rollout_state(http: httpx.Client, rollout_id: int) -> dict[str, Any]:
    rollouts = http.get("/admin/rollouts", params={"alias": "support"}).json()
    return next(r for r in rollouts if r["id"] == rollout_id)


def test_worse_candidate_is_rolled_back_and_better_one_promoted(
    sqlite_url: str,
    make_live_gateway: Callable[..., Settings],
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, alerts = webhook
    live = make_live_gateway(
        sqlite_url, worker=True, rollout={"check_interval_s": 0.3, "alert_webhook_url": url}
    )
    store = live.serve.adapter_store
    base = f"http://127.0.0.1:{live.serve.port}"
    with httpx.Client(base_url=base, timeout=60) as http:
        v1, name1 = register(http, store, "v1")
        assert http.post("/admin/aliases/support/promote", json={"version": v1}).status_code == 200
        v2, name2 = register(http, store, "v2")
        v3, name3 = register(http, store, "v3")
        versions = {name1: v1, name2: v2, name3: v3}
        # judged on ratings: the fake engine's few-ms latencies would only measure this machine
        policy = {"steps": [10, 50], "min_requests": 30, "min_ratings": 20,
                  "latency_slack_ms": 5000}  # fmt: skip

        started = http.post("/admin/aliases/support/rollouts", json={"version": v2, **policy})
        assert started.status_code == 201, started.text
        bad = started.json()["id"]
        again = http.post("/admin/aliases/support/rollouts", json={"version": v3})
        assert (
            again.status_code == 409 and "already has a rollout" in again.json()["error"]["message"]
        )
        run = simulate(
            base, "support", versions, {v1: 0.05, v2: 0.6, v3: 0.0},
            lambda: rollout_state(http, bad)["state"] != "running",
        )  # fmt: skip
        print(f"\nworse candidate: {run.requests} requests, served {dict(run.served)}")
        rolled = rollout_state(http, bad)
        assert rolled["state"] == "rolled_back", rolled["last_check"]
        assert [d["action"] for d in rolled["decisions"]] == ["start", "rollback"]
        assert "thumbs_down_rate worse" in rolled["decisions"][-1]["reason"]
        judged = {c["metric"]: c for c in rolled["decisions"][-1]["comparisons"]}
        assert judged["thumbs_down_rate"]["test"] == "Fisher's exact test, one-sided"
        assert run.failed == [], run.failed[:3]
        assert run.served[v2] > 0
        alias = next(a for a in http.get("/admin/aliases").json() if a["name"] == "support")
        assert alias["production_version"] == v1 and alias["canary_version"] is None

        started = http.post("/admin/aliases/support/rollouts", json={"version": v3, **policy})
        good = started.json()["id"]
        run = simulate(
            base, "support", versions, {v1: 0.1, v2: 0.6, v3: 0.0},
            lambda: rollout_state(http, good)["state"] != "running",
        )  # fmt: skip
        print(f"better candidate: {run.requests} requests, served {dict(run.served)}")
        promoted = rollout_state(http, good)
        assert promoted["state"] == "promoted", promoted["last_check"]
        assert [d["action"] for d in promoted["decisions"]] == ["start", "advance", "promote"]
        assert [d["share"] for d in promoted["decisions"]] == [10, 50, 100]
        assert run.failed == [], run.failed[:3]
        alias = next(a for a in http.get("/admin/aliases").json() if a["name"] == "support")
        assert alias["production_version"] == v3 and alias["previous_version"] == v1
        assert http.post(f"/admin/rollouts/{good}/abort", headers=JSON).status_code == 409

    assert [(a["action"], a["version"]) for a in alerts] == [("rollback", v2), ("promote", v3)]
    listed = CliRunner().invoke(cli, ["rollouts"], env={"LORALOOP_DB_URL": sqlite_url})
    assert listed.exit_code == 0, listed.output
    for words in ("rolled_back", "promoted", "thumbs_down_rate worse", "passed all 2 steps"):
        assert words in listed.output, listed.output


def test_canary_assignment_sticks_to_the_end_user(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    """On one database kind: the assignment is a hash, the database plays no part."""
    gateway = make_gateway(sqlite_url)
    store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
    v1, name1 = register(gateway, store, "s1")
    v2, name2 = register(gateway, store, "s2")
    gateway.post("/admin/aliases/support/promote", json={"version": v1})
    gateway.post("/admin/aliases/support/canary", json={"version": v2, "share": 0.3})
    names = {name1: v1, name2: v2}

    def served(**extra: Any) -> int:
        body = {"model": "support", "messages": [{"role": "user", "content": "hi"}], **extra}
        headers = extra.pop("headers", None)
        body.pop("headers", None)
        reply = gateway.post("/v1/chat/completions", json=body, headers=headers)
        assert reply.status_code == 200, reply.text
        return names[reply.json()["choices"][0]["message"]["content"][1:].split("]")[0]]

    for user in ("alice", "bob"):
        assert len({served(user=user) for _ in range(1000)}) == 1, f"{user} flipped versions"
    assert len({served(headers={"X-Session-Id": "s-42"}) for _ in range(100)}) == 1
    by_user = Counter(served(user=f"u{i}") for i in range(200))
    assert 30 <= by_user[v2] <= 90, by_user  # 30 % of the users, not of the requests
    anonymous = Counter(served() for _ in range(100))
    assert anonymous[v1] and anonymous[v2], "without an id the split stays random"


def test_rollout_errors_are_clear(gateway: TestClient, store: Path) -> None:
    missing = gateway.post("/admin/aliases/support/rollouts", json={"version": 1})
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    v1, _ = register(gateway, store, "e1")
    gateway.post("/admin/aliases/support/promote", json={"version": v1})
    same = gateway.post("/admin/aliases/support/rollouts", json={"version": v1})
    assert same.status_code == 409 and "production already" in same.json()["error"]["message"]
    v2, _ = register(gateway, store, "e2")
    bad_steps = gateway.post(
        "/admin/aliases/support/rollouts", json={"version": v2, "steps": [50, 10]}
    )
    assert bad_steps.status_code == 400 and "steps must increase" in bad_steps.text
    ok = gateway.post("/admin/aliases/support/rollouts", json={"version": v2, "steps": [20]})
    assert ok.status_code == 201 and ok.json()["policy"]["steps"] == [20]
    alias = next(a for a in gateway.get("/admin/aliases").json() if a["name"] == "support")
    assert alias["canary_version"] == v2 and alias["canary_share"] == pytest.approx(0.2)
    aborted = gateway.post(f"/admin/rollouts/{ok.json()['id']}/abort", headers=JSON)
    assert aborted.status_code == 200 and aborted.json()["state"] == "aborted"
    alias = next(a for a in gateway.get("/admin/aliases").json() if a["name"] == "support")
    assert alias["canary_version"] is None and alias["production_version"] == v1
    assert gateway.post("/admin/rollouts/999/abort", headers=JSON).status_code == 404
