"""API keys and roles on the gateway."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from feedback.models import Interaction
from serve.auth import create_key

BODY = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def locked(migrated_db: str, make_gateway: Callable[..., TestClient]) -> TestClient:
    return make_gateway(migrated_db, require_keys=True)


def key(client: TestClient, role: str) -> dict[str, str]:
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {create_key(session, role, f'test {role}')}"}


def test_requests_need_a_valid_key(locked: TestClient) -> None:
    missing = locked.post("/v1/chat/completions", json=BODY)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    wrong = locked.post(
        "/v1/chat/completions", json=BODY, headers={"Authorization": "Bearer ll-abc-nope"}
    )
    assert wrong.status_code == 401
    ok = locked.post("/v1/chat/completions", json=BODY, headers=key(locked, "client"))
    assert ok.status_code == 200

    locked.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(locked.app.state.db) as session:  # type: ignore[attr-defined]
        records = list(session.exec(select(Interaction)))
    assert len(records) == 1, "requests refused at authentication are not captured"
    assert records[0].client_key_id is not None


def test_roles_are_enforced(locked: TestClient) -> None:
    client_key, admin_key = key(locked, "client"), key(locked, "admin")
    refused = locked.get("/admin/adapters", headers=client_key)
    assert refused.status_code == 403
    assert "admin role" in refused.json()["error"]["message"]
    assert locked.get("/admin/adapters", headers=admin_key).status_code == 200
    assert locked.post("/v1/chat/completions", json=BODY, headers=admin_key).status_code == 200


def test_keys_are_stored_hashed(locked: TestClient) -> None:
    from serve.tables import ApiKey

    plain = key(locked, "client")["Authorization"].removeprefix("Bearer ")
    with Session(locked.app.state.db) as session:  # type: ignore[attr-defined]
        stored = session.exec(select(ApiKey)).one()
    assert plain.split("-", 2)[2] not in stored.secret_hash
    assert len(stored.secret_hash) == 64
