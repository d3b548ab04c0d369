"""The role matrix, generated from the route table: every route by every kind of caller
gets exactly the status its declared role implies. A route whose dependencies declare
no role (`require`, `signed_in` or `public`), or that has no sample request here, fails."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from feedback.pages import COOKIE, CSRF
from serve.auth import ROLES, create_key, declared_roles, revoke_key
from tests.utils.clients import JSON, page_session

CALLERS = ["none", "wrong", "revoked", "client", "reviewer", "admin"]
FASTAPI_OWN: set[str] = set()  # the schema and docs are routes of our own, with a role
LOGOUT = "/review/logout"
REMOTE = "198.51.100.7"
CHAT = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Sample:
    """One request to a route, and the status a caller allowed to make it gets."""

    path: str
    ok: int
    json: Any = None
    form: dict[str, Any] = field(default_factory=dict)


SAMPLES: dict[tuple[str, str], Sample] = {
    ("GET", "/health"): Sample("/health", 200),
    ("GET", "/metrics"): Sample("/metrics", 200),
    ("GET", "/openapi.json"): Sample("/openapi.json", 200),
    ("GET", "/docs"): Sample("/docs", 200),
    ("POST", "/v1/chat/completions"): Sample("/v1/chat/completions", 200, CHAT),
    ("POST", "/v1/completions"): Sample("/v1/completions", 200, {"model": "base", "prompt": "x"}),
    ("GET", "/v1/models"): Sample("/v1/models", 200),
    ("GET", "/v1/templates"): Sample("/v1/templates", 200),
    ("GET", "/admin/adapters"): Sample("/admin/adapters", 200),
    ("POST", "/admin/adapters"): Sample("/admin/adapters", 400, {"name": "a", "path": "none"}),
    ("POST", "/admin/aliases/{name}/promote"): Sample(
        "/admin/aliases/a/promote", 404, {"version": 1}
    ),
    ("POST", "/admin/aliases/{name}/canary"): Sample(
        "/admin/aliases/a/canary", 404, {"version": 1, "share": 0.1}
    ),
    ("POST", "/admin/aliases/{name}/rollback"): Sample("/admin/aliases/a/rollback", 400),
    ("GET", "/admin/aliases"): Sample("/admin/aliases", 200),
    ("GET", "/admin/keys"): Sample("/admin/keys", 200),
    ("POST", "/admin/aliases/{name}/rollouts"): Sample(
        "/admin/aliases/a/rollouts", 404, {"version": 1}
    ),
    ("POST", "/admin/templates/{name}/rollouts"): Sample(
        "/admin/templates/a/rollouts", 404, {"version": 1}
    ),
    ("GET", "/admin/rollouts"): Sample("/admin/rollouts", 200),
    ("POST", "/admin/aliases/{name}/shadow"): Sample(
        "/admin/aliases/a/shadow", 404, {"version": 1, "share": 0.5}
    ),
    ("GET", "/v1/reviews/pairs/next"): Sample("/v1/reviews/pairs/next", 204),
    ("POST", "/v1/reviews/pairs"): Sample(
        "/v1/reviews/pairs", 404, {"interaction_id": "x", "preferred": "a"}
    ),
    ("POST", "/v1/datasets/preferences"): Sample("/v1/datasets/preferences", 200, {}),
    ("GET", "/review/pairs"): Sample("/review/pairs", 200),
    ("POST", "/review/pairs/submit"): Sample(
        "/review/pairs/submit", 303, form={"interaction_id": "x", "preferred": "a"}
    ),
    ("POST", "/admin/rollouts/{rollout_id}/abort"): Sample("/admin/rollouts/9/abort", 404),
    ("POST", "/admin/keys"): Sample("/admin/keys", 201, {"role": "client"}),
    ("DELETE", "/admin/keys/{key_id}"): Sample("/admin/keys/nokey", 404),
    ("POST", "/v1/feedback"): Sample("/v1/feedback", 404, {"interaction_id": "x", "rating": "up"}),
    ("GET", "/v1/reviews/next"): Sample("/v1/reviews/next", 204),
    ("POST", "/v1/reviews"): Sample("/v1/reviews", 409, {"interaction_id": "x", "score": 3}),
    ("POST", "/v1/reviews/skip"): Sample("/v1/reviews/skip", 409, {"interaction_id": "x"}),
    ("POST", "/v1/datasets/export"): Sample("/v1/datasets/export", 200, {}),
    ("GET", "/v1/golden/{alias}"): Sample("/v1/golden/a", 200),
    ("POST", "/v1/golden/{alias}"): Sample("/v1/golden/a", 404, {"interaction_id": "x"}),
    ("DELETE", "/v1/golden/{alias}/{key:path}"): Sample("/v1/golden/a/k", 404),
    ("GET", "/v1/stats"): Sample("/v1/stats", 200),
    ("GET", "/v1/reviews/stats"): Sample("/v1/reviews/stats", 200),
    ("GET", "/v1/drift/reports"): Sample("/v1/drift/reports", 200),
    ("GET", "/v1/drift/reports/{report_id}.html"): Sample("/v1/drift/reports/9.html", 404),
    ("GET", "/v1/drift/reports/{report_id}"): Sample("/v1/drift/reports/9", 404),
    ("POST", "/v1/drift/run"): Sample("/v1/drift/run", 201, {"alias": "a"}),
    ("GET", "/review"): Sample("/review", 200),
    ("POST", "/review/login"): Sample("/review/login", 303, form={"key": "ll-x-y"}),
    ("POST", "/review/logout"): Sample("/review/logout", 303),
    ("POST", "/review/submit"): Sample(
        "/review/submit", 303, form={"interaction_id": "x", "score": "3"}
    ),
    ("POST", "/review/skip"): Sample("/review/skip", 303, form={"interaction_id": "x"}),
    ("GET", "/ops"): Sample("/ops", 200),
    ("GET", "/ops/drift/{report_id}"): Sample("/ops/drift/9", 404),
    ("GET", "/ops/overview"): Sample("/ops/overview", 200),
    ("GET", "/ops/drift"): Sample("/ops/drift", 200),
    ("GET", "/ops/runs"): Sample("/ops/runs", 200),
    ("GET", "/ops/runs/{alias}/{run_id}"): Sample("/ops/runs/a/run-1", 404),
    ("GET", "/ops/runs/{alias}/{run_id}/{name}"): Sample("/ops/runs/a/run-1/loss.svg", 404),
    ("GET", "/ops/adapters"): Sample("/ops/adapters", 200),
    ("POST", "/ops/adapters/{name}/{action}"): Sample(
        "/ops/adapters/a/promote", 200, form={"version": "1"}
    ),
}


def expected(role: str, caller: str, ok: int) -> int:
    if role == "public":
        return ok
    role = role.removeprefix("local-or:")  # the matrix calls from another machine
    if role.startswith("page:"):  # pages answer a caller without a good cookie with sign-in
        needed = role.removeprefix("page:")
        allowed = caller in ROLES and ROLES[caller] >= ROLES[needed]
        return ok if allowed else 401
    if caller in ("none", "wrong", "revoked"):
        return 401
    return ok if ROLES[caller] >= ROLES[role] else 403


@pytest.fixture
def locked(sqlite_url: str, make_gateway: Callable[..., TestClient]) -> TestClient:
    """Keys required, every call from another machine (not loopback)."""
    return make_gateway(sqlite_url, require_keys=True, peer=REMOTE)


def make_keys(client: TestClient) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Each caller's API key, and its page session's token (the revoked key signed in
    before it was revoked)."""
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        keys: dict[str, str | None] = {r: create_key(session, r, r) for r in ROLES}
        revoked = create_key(session, "admin", "revoked")
        tokens = {r: page_session(client, k, "client") for r, k in keys.items() if k}
        tokens["revoked"] = page_session(client, revoked, "client")
        revoke_key(session, revoked.split("-")[1])
    client.app.state.auth.forget(revoked.split("-")[1])  # type: ignore[attr-defined]
    keys |= {"none": None, "wrong": "ll-0123456789ab-wrong", "revoked": revoked}
    return keys, {"none": None, "wrong": "not-a-session", **tokens}


def call(client: TestClient, method: str, sample: Sample, key: str | None, page: bool) -> int:
    client.cookies.clear()
    headers: dict[str, str] = {}
    if page:  # `key` is a page session's token
        client.cookies.set(CSRF, "token")
        if key:
            client.cookies.set(COOKIE, key)
    else:  # the API takes JSON only, bodyless requests included
        headers["Content-Type"] = "application/json"
        if key:
            headers["Authorization"] = f"Bearer {key}"
    if sample.form or (page and method == "POST"):
        response = client.request(
            method,
            sample.path,
            data={**sample.form, "csrf": "token"},
            headers=headers,
            follow_redirects=False,
        )
    else:
        response = client.request(
            method, sample.path, json=sample.json, headers=headers, follow_redirects=False
        )
    return response.status_code


def test_every_route_declares_its_role_and_has_a_sample(locked: TestClient) -> None:
    undeclared, unsampled = [], []
    for route in locked.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute):
            assert route.path in FASTAPI_OWN, f"{route.path}: a route outside the API router"
            continue
        for method in route.methods:
            if len(declared_roles(route.dependant)) != 1:
                undeclared.append(f"{method} {route.path}")
            if (method, route.path) not in SAMPLES:
                unsampled.append(f"{method} {route.path}")
    assert not undeclared, f"routes without exactly one declared role: {undeclared}"
    assert not unsampled, f"routes without a sample in the role matrix: {unsampled}"


def test_role_matrix(locked: TestClient) -> None:
    keys, tokens = make_keys(locked)
    routes = {
        (method, route.path): next(iter(declared_roles(route.dependant)))
        for route in locked.app.routes  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    wrong = []
    # Signing out ends the page sessions it is called with: last.
    for (method, path), role in sorted(routes.items(), key=lambda r: (r[0][1] == LOGOUT, r)):
        sample = SAMPLES[(method, path)]
        page = role.startswith("page:") or (role == "public" and path.startswith("/review"))
        for caller in CALLERS:
            got = call(locked, method, sample, (tokens if page else keys)[caller], page)
            want = expected(role, caller, sample.ok)
            if got != want:
                wrong.append(f"{method} {path} as {caller}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)
    assert len(routes) * len(CALLERS) >= 200


def test_revoked_key_stops_at_once_here_and_within_the_interval_elsewhere(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    here = make_gateway(sqlite_url, require_keys=True)
    here.app.state.auth.cache_ttl_s = 3600  # type: ignore[attr-defined]  # "at once" is not the TTL
    there = make_gateway(sqlite_url, require_keys=True)
    interval = there.app.state.auth.cache_ttl_s  # type: ignore[attr-defined]
    with Session(here.app.state.db) as session:  # type: ignore[attr-defined]
        admin = {"Authorization": f"Bearer {create_key(session, 'admin', 'ops')}"}
    created = here.post("/admin/keys", json={"role": "client", "name": "bot"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    bot = {"Authorization": f"Bearer {body['key']}"}
    for gateway in (here, there):  # both have checked (and cached) it
        assert gateway.get("/v1/models", headers=bot).status_code == 200

    revoked = here.delete(f"/admin/keys/{body['id']}", headers=admin | JSON)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert here.get("/v1/models", headers=bot).status_code == 401
    assert interval == 0.2, "the key cache lives as long as the reconcile interval"
    time.sleep(interval + 0.1)
    refused = there.get("/v1/models", headers=bot)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    listed = {k["id"]: k for k in here.get("/admin/keys", headers=admin).json()}
    assert listed[body["id"]]["revoked"] is True
    assert "key" not in listed[body["id"]], "a listed key never shows its secret"
