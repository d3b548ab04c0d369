"""Test clients of an in-process gateway."""

import asyncio
from typing import Any

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}  # what a bodyless API call must still say


def local_client(app: Any, peer: str = "127.0.0.1") -> TestClient:
    """A test client that calls from `peer` (default: this machine, as `make run`'s users
    do) under the Host name `localhost`, which the default allow-list serves."""
    return TestClient(app, base_url="http://localhost", client=(peer, 50000))


def page_session(client: TestClient, key: str, role: str = "reviewer") -> str:
    """A signed-in page session for `key`, as the sign-in form makes one: the cookie's token."""
    _, token = asyncio.run(client.app.state.auth.sign_in(key, role))  # type: ignore[attr-defined]
    return str(token)
