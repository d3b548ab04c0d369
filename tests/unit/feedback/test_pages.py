"""The pages' defences, without a browser: CSRF tokens and origins on every form post,
security headers on every page. (The browser tests are in tests/integration/feedback.)"""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlmodel import Session

from feedback.pages import COOKIE, CSRF
from loraloop.launch import free_port
from loraloop.settings import Settings
from serve.auth import create_key
from tests.utils.clients import page_session
from tests.utils.nginx import Nginx


@pytest.fixture
def signed_in(sqlite_url: str, make_gateway: Callable[..., TestClient]) -> TestClient:
    client = make_gateway(sqlite_url, require_keys=True)
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        key = create_key(session, "reviewer", "r")
    client.cookies.set(COOKIE, page_session(client, key))
    return client


def test_pages_send_security_headers_and_a_csrf_cookie(signed_in: TestClient) -> None:
    page = signed_in.get("/review")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    token = page.cookies.get(CSRF)
    assert token and f'name="csrf" value="{token}"' in page.text
    assert "httponly" in page.headers["set-cookie"].lower()
    assert "samesite=strict" in page.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("form_token", "origin", "status"),
    [
        (None, None, 403),  # no token in the form
        ("forged", None, 403),  # a token that is not the browser's
        ("token", "http://evil.example", 403),  # the browser says it came from elsewhere
        ("token", "http://localhost", 303),  # our own page
        ("token", None, 303),  # no Origin header (older browsers): the token suffices
    ],
)
def test_form_posts_need_the_csrf_token_and_our_origin(
    signed_in: TestClient, form_token: str | None, origin: str | None, status: int
) -> None:
    signed_in.cookies.set(CSRF, "token")
    form = {"interaction_id": "x"} | ({"csrf": form_token} if form_token else {})
    headers = {"Origin": origin} if origin else {}
    response = signed_in.post("/review/skip", data=form, headers=headers, follow_redirects=False)
    assert response.status_code == status
    if status == 403:
        assert "another site" in response.text


def test_sign_in_and_review_through_the_load_balancer_over_tls(
    migrated_db: str, make_live_gateway: Callable[..., Settings], tmp_path: Path
) -> None:
    """docker/nginx.conf for real, in front of a gateway that trusts it: the Host keeps its
    port (the Origin check passes), TLS ends at nginx and the cookies come back Secure, and
    the session cookie is not the key."""
    settings = make_live_gateway(migrated_db, require_keys=True, trusted_proxies=["127.0.0.1"])
    upstream = f"127.0.0.1:{settings.serve.port}"
    lb = Nginx([upstream, upstream], free_port(), tmp_path)
    try:
        engine = create_engine(migrated_db)
        with Session(engine) as session:
            client_key = create_key(session, "client", "bot")
            reviewer_key = create_key(session, "reviewer", "ana")
        engine.dispose()
        with httpx.Client(base_url=lb.tls_url, verify=str(lb.certificate), timeout=30) as http:
            asked = http.post(
                "/v1/chat/completions",
                json={"model": "base", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {client_key}"},
            )
            assert asked.status_code == 200, asked.text
            login = http.get("/review")
            assert login.status_code == 401
            assert "secure" in login.headers["set-cookie"].lower(), "https seen behind nginx"
            origin = {"Origin": lb.tls_url}
            signed = http.post(
                "/review/login",
                data={"key": reviewer_key, "csrf": http.cookies[CSRF]},
                headers=origin,
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            session_cookie = next(
                c for c in signed.headers.get_list("set-cookie") if c.startswith(COOKIE)
            )
            assert "secure" in session_cookie.lower()
            assert reviewer_key not in session_cookie, "the cookie holds a session, not the key"
            deadline = time.monotonic() + 10
            while f'value="{asked.json()["interaction_id"]}"' not in http.get("/review").text:
                assert time.monotonic() < deadline, "the interaction never reached the queue"
                time.sleep(0.2)
            saved = http.post(
                "/review/submit",
                data={
                    "interaction_id": asked.json()["interaction_id"],
                    "score": "4",
                    "csrf": http.cookies[CSRF],
                },
                headers=origin,
                follow_redirects=False,
            )
            assert saved.status_code == 303 and "Saved" in saved.headers["location"]
        # The plain port of the edge network keeps the port in Host too.
        with httpx.Client(base_url=lb.url, timeout=30) as http:
            http.get("/review")
            plain = http.post(
                "/review/login",
                data={"key": reviewer_key, "csrf": http.cookies[CSRF]},
                headers={"Origin": lb.url},
                follow_redirects=False,
            )
            assert plain.status_code == 303 and "message" not in plain.headers["location"]
    finally:
        lb.stop()
