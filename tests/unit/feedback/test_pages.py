"""The pages' defences, without a browser: CSRF tokens and origins on every form post,
security headers on every page. (The browser tests are in tests/integration/feedback.)"""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from feedback.pages import COOKIE, CSRF
from serve.auth import create_key


@pytest.fixture
def signed_in(sqlite_url: str, make_gateway: Callable[..., TestClient]) -> TestClient:
    client = make_gateway(sqlite_url, require_keys=True)
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        client.cookies.set(COOKIE, create_key(session, "reviewer", "r"))
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
        ("token", "http://testserver", 303),  # our own page
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
