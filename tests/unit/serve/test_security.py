"""The gateway's security review, one regression test per finding: open mode is decided
from the address actually bound and trusts only requests straight from this machine; a
browser cannot drive a local gateway (Host allow-list, JSON only on the API, no CORS);
end-user ratings and pinned traffic cannot steer a rollout; adapters changed on disk are
not loaded."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from feedback.live import version_traffic
from feedback.models import Interaction, UserFeedback, utcnow
from feedback.pages import COOKIE, CSRF
from loraloop.app import create_app, open_access
from loraloop.cli import app as cli
from loraloop.settings import Settings
from serve.auth import create_key
from serve.security import host_allowed, is_loopback
from serve.settings import ServeSettings
from serve.tables import PageSession
from tests.utils.adapters import make_adapter_dir

CHAT = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}


def keyed(client: TestClient, role: str) -> dict[str, str]:
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {create_key(session, role, role)}"}


# --- 1. open mode follows the address actually bound ---


def test_open_mode_is_decided_from_the_bound_address() -> None:
    open_here = Settings(serve=ServeSettings(host="127.0.0.1", require_keys=False))
    assert open_access(open_here, "127.0.0.1") is True
    with pytest.raises(ValueError, match=r"loopback address only.*0\.0\.0\.0"):
        open_access(open_here, "0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        create_app(open_here, bound_host="0.0.0.0")
    assert open_access(Settings(serve=ServeSettings()), "0.0.0.0") is False, "keys by default"
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_run_on_all_interfaces_in_open_mode_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LORALOOP_SERVE_REQUIRE_KEYS", "false")
    result = CliRunner().invoke(cli, ["run", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code != 0
    assert "0.0.0.0" in result.output and "loopback" in result.output


# --- 2. open mode trusts only what comes straight from this machine ---


@pytest.mark.parametrize(
    ("peer", "headers", "status"),
    [
        ("127.0.0.1", {}, 200),  # `make run`'s user
        ("10.1.2.3", {}, 401),  # anyone else reaching a gateway bound elsewhere
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, 401),  # nginx on this machine
        ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, 401),  # any standard proxy
        ("127.0.0.1", {"X-Real-IP": "203.0.113.9"}, 401),
    ],
)
def test_open_mode_admits_only_local_unforwarded_requests(
    sqlite_url: str,
    make_gateway: Callable[..., TestClient],
    peer: str,
    headers: dict[str, str],
    status: int,
) -> None:
    client = make_gateway(sqlite_url, peer=peer)  # open mode, as `make run`
    assert client.get("/admin/keys", headers=headers).status_code == status
    assert client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == status
    page = client.get("/ops", headers=headers)
    assert page.status_code == (200 if status == 200 else 401), "pages ask to sign in"


# --- 3. a web page cannot drive a local gateway ---


def test_foreign_host_names_are_refused(gateway: TestClient) -> None:
    rebound = gateway.get("/v1/models", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400
    assert rebound.json()["error"]["code"] == "host_not_allowed"
    assert gateway.get("/v1/models", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert gateway.get("/v1/models", headers={"Host": "[::1]:8000"}).status_code == 200
    assert host_allowed("api.example.com", ["*.example.com"])
    assert not host_allowed("example.com.evil", ["*.example.com"])


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/admin/aliases/support/rollback", None),  # bodyless: a form or fetch could send it
        ("/admin/rollouts/1/abort", "text/plain"),
        ("/v1/chat/completions", "text/plain"),  # the proxy would parse any body
        ("/v1/feedback", "application/x-www-form-urlencoded"),
    ],
)
def test_state_changing_api_requests_must_be_json(
    gateway: TestClient, path: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = '{"model": "base", "messages": [{"role": "user", "content": "hi"}]}'
    refused = gateway.post(path, content=body if content_type else None, headers=headers)
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "unsupported_media_type"
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        assert session.exec(select(Interaction)).first() is None, "refused before any work"


def test_no_cors_preflight_is_granted(gateway: TestClient) -> None:
    preflight = gateway.options(
        "/admin/aliases/support/rollback",
        headers={
            "Origin": "https://attacker.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code >= 400
    assert "access-control-allow-origin" not in preflight.headers


def test_page_forms_need_the_csrf_token_in_open_mode_too(gateway: TestClient) -> None:
    assert gateway.get("/ops/adapters").status_code == 200  # open mode: signed in
    forged = gateway.post("/review/skip", data={"interaction_id": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    gateway.cookies.set(CSRF, "token")
    cross_site = gateway.post(
        "/ops/adapters/support/rollback",
        data={"csrf": "token"},
        headers={"Origin": "http://attacker.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403


# --- 5. ratings and pinned traffic cannot steer a rollout ---


def test_only_the_interactions_key_rates_it_once_for_its_end_user(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url, require_keys=True)
    owner, other, admin = (
        keyed(gateway, "client"),
        keyed(gateway, "client"),
        keyed(gateway, "admin"),
    )
    asked = gateway.post("/v1/chat/completions", json=CHAT | {"user": "ana"}, headers=owner)
    iid = asked.json()["interaction_id"]
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]

    def rate(headers: dict[str, str], **extra: str) -> int:
        body = {"interaction_id": iid, "rating": "down", **extra}
        return gateway.post("/v1/feedback", json=body, headers=headers).status_code

    assert rate(other) == 403, "another client's key"
    assert rate(owner, end_user_id="sybil-1") == 403, "not the end user it was served to"
    for _ in range(3):
        assert rate(owner) == 200
    assert rate(owner, end_user_id="ana") == 200
    assert rate(admin) == 200
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        rows = session.exec(select(UserFeedback).where(UserFeedback.interaction_id == iid)).all()
    assert len(rows) == 5 and sum(r.current for r in rows) == 1, "one current rating"
    assert {r.end_user_id for r in rows} == {"ana"}


def test_pinned_requests_are_not_rollout_evidence_and_need_a_reviewer_off_the_split(
    sqlite_url: str, make_gateway: Callable[..., TestClient], tmp_path: Path
) -> None:
    gateway = make_gateway(sqlite_url, require_keys=True)
    admin, client = keyed(gateway, "admin"), keyed(gateway, "client")
    reviewer = keyed(gateway, "reviewer")
    store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
    for n in (1, 2, 3):
        path = make_adapter_dir(store, f"v{n}")
        body = {"name": "support", "path": str(path)}
        assert gateway.post("/admin/adapters", json=body, headers=admin).status_code == 201
    assert (
        gateway.post(
            "/admin/aliases/support/promote", json={"version": 1}, headers=admin
        ).status_code
        == 200
    )
    canary = {"version": 2, "share": 0.05}
    assert gateway.post("/admin/aliases/support/canary", json=canary, headers=admin).is_success
    since = utcnow()
    for _ in range(5):  # a client pins the canary to pile up evidence for it
        pinned = gateway.post(
            "/v1/chat/completions", json=CHAT | {"model": "support@2"}, headers=client
        )
        assert pinned.status_code == 200
    off_split = CHAT | {"model": "support@3"}  # registered, not serving
    refused = gateway.post("/v1/chat/completions", json=off_split, headers=client)
    assert refused.status_code == 403 and refused.json()["error"]["param"] == "model"
    assert gateway.post("/v1/chat/completions", json=off_split, headers=reviewer).status_code == 200
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        assert version_traffic(session, "support", 2, since).requests == 0
        pinned_rows = session.exec(select(Interaction).where(Interaction.pinned)).all()
    assert len(pinned_rows) == 7  # 5 canary pins, the refused one, the reviewer's


# --- 6. an adapter changed on disk after registration is not loaded ---


def test_an_adapter_swapped_on_disk_is_not_loaded(gateway: TestClient) -> None:
    store = gateway.app.state.router.registry.store  # type: ignore[attr-defined]
    path = make_adapter_dir(store, "v1")
    assert (
        gateway.post("/admin/adapters", json={"name": "support", "path": str(path)}).status_code
        == 201
    )
    router = gateway.app.state.router  # type: ignore[attr-defined]
    for names in router.loaded.values():  # as after an engine restart
        names.clear()
    (path / "adapter_model.safetensors").write_bytes(b"other weights")
    refused = gateway.post("/admin/aliases/support/promote", json={"version": 1})
    assert refused.status_code >= 400
    assert "changed on disk" in refused.json()["error"]["message"]


# --- should-fix findings ---


def test_health_says_only_up_or_down_to_strangers(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    stranger = make_gateway(sqlite_url, require_keys=True, peer="203.0.113.9")
    bare = stranger.get("/health")
    assert bare.status_code == 200 and bare.json() == {"status": "ok"}
    detailed = stranger.get("/health", headers=keyed(stranger, "reviewer")).json()
    assert detailed["engine"]["state"] == "ready" and detailed["replicas"]
    assert detailed["rate_limit"]["scope"] == "per gateway", "the limit is stated per gateway"
    assert stranger.get("/health", headers=keyed(stranger, "client")).json() == {"status": "ok"}
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert stranger.get(path).status_code == 401, path
        assert stranger.get(path, headers=keyed(stranger, "reviewer")).status_code == 200, path


def test_this_machine_reads_health_metrics_and_docs_without_a_key(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    local = make_gateway(sqlite_url, require_keys=True)
    assert local.get("/health").json()["database"] == "ok"
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert local.get(path).status_code == 200, path
    relayed = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 401


def test_failed_authentications_are_limited_per_address(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(
        sqlite_url, require_keys=True, auth_failures_per_min=1, auth_failures_burst=3
    )
    wrong = {"Authorization": "Bearer ll-0123456789ab-guess"}
    statuses = [gateway.get("/v1/models", headers=wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    blocked = gateway.get("/v1/models", headers=keyed(gateway, "client"))
    assert blocked.status_code == 429 and blocked.headers["retry-after"], "checked before lookup"


def test_in_flight_requests_per_key_are_capped(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url, require_keys=True, max_concurrent_per_key=1)
    key = keyed(gateway, "client")
    inflight = gateway.app.state.proxy.inflight  # type: ignore[attr-defined]
    holder = key["Authorization"].split("-")[1]
    assert inflight.enter(holder)  # one request of this key is in flight
    refused = gateway.post("/v1/chat/completions", json=CHAT, headers=key)
    assert refused.status_code == 429 and "in flight" in refused.json()["error"]["message"]
    assert gateway.post(
        "/v1/chat/completions", json=CHAT, headers=keyed(gateway, "client")
    ).is_success
    inflight.leave(holder)
    assert gateway.post("/v1/chat/completions", json=CHAT, headers=key).status_code == 200
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        statuses = sorted(r.status_code for r in session.exec(select(Interaction)))
    assert statuses == [200, 200, 429], "the refused one is captured too"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chat_template", "{{ raise('x') }}"),  # a client-supplied Jinja template for vLLM
        ("priority", -100),  # jumping the engine's queue
        ("kv_transfer_params", {"do_remote_prefill": True}),
        ("typo_temprature", 0.1),
    ],
)
def test_fields_the_gateway_does_not_forward_are_refused(
    gateway: TestClient, field: str, value: object
) -> None:
    refused = gateway.post("/v1/chat/completions", json=CHAT | {field: value})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == field
    sampling = CHAT | {"temperature": 0.2, "top_k": 5, "response_format": {"type": "text"}}
    assert gateway.post("/v1/chat/completions", json=sampling).status_code == 200


# --- 7. the pages' cookie is a session, not the key ---


def test_page_sessions_end_at_sign_out_on_expiry_and_with_their_key(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url, require_keys=True, session_ttl_s=1)
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        key = create_key(session, "reviewer", "ana")

    def sign_in() -> str:
        gateway.cookies.clear()
        gateway.get("/review")  # the CSRF cookie
        form = {"key": key, "csrf": gateway.cookies[CSRF]}
        signed = gateway.post("/review/login", data=form, follow_redirects=False)
        assert signed.status_code == 303 and "message" not in signed.headers["location"]
        token = gateway.cookies[COOKIE]
        assert token and key not in token
        return str(token)

    first = sign_in()
    assert gateway.get("/review").status_code == 200
    out = gateway.post("/review/logout", data={"csrf": gateway.cookies[CSRF]})
    assert out.status_code == 401, "signed out: the page asks to sign in again"
    gateway.cookies.set(COOKIE, first)
    assert gateway.get("/review").status_code == 401, "the signed-out token is dead"
    sign_in()
    assert gateway.get("/review").status_code == 200
    time.sleep(1.1)
    assert gateway.get("/review").status_code == 401, "expired"
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        stored = session.exec(select(PageSession)).all()
    assert all(key not in s.id for s in stored), "the database keeps hashes of tokens only"
