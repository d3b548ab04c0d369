"""Shadow mode: the candidate answers production's requests off the request path; its
answers are captured linked to the production interaction and never reach the client."""

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from feedback.models import Interaction
from tests.utils.adapters import make_adapter_dir

QUESTION = [{"role": "user", "content": "where is my parcel?"}]


def register(gateway: TestClient, store: Path, name: str) -> tuple[int, str]:
    out = gateway.post(
        "/admin/adapters", json={"name": "support", "path": str(make_adapter_dir(store, name))}
    )
    assert out.status_code == 201, out.text
    return out.json()["version"], out.json()["engine_name"]


def shadows(gateway: TestClient, expected: int) -> list[Interaction]:
    deadline = time.monotonic() + 20
    while True:
        gateway.app.state.capture.flush(5)  # type: ignore[attr-defined]
        with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
            rows = list(
                session.exec(select(Interaction).where(col(Interaction.shadow_of).is_not(None)))
            )
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_shadow_answers_are_captured_beside_production(gateway: TestClient, store: Path) -> None:
    v1, name1 = register(gateway, store, "p1")
    v2, name2 = register(gateway, store, "p2")
    gateway.post("/admin/aliases/support/promote", json={"version": v1})
    refused = gateway.post("/admin/aliases/support/shadow", json={"version": v1})
    assert refused.status_code == 400 and "cannot shadow itself" in refused.text
    on = gateway.post("/admin/aliases/support/shadow", json={"version": v2, "share": 1.0})
    assert on.status_code == 200 and on.json()["shadow_version"] == v2

    ids = []
    for _ in range(4):
        reply = gateway.post(
            "/v1/chat/completions", json={"model": "support", "messages": QUESTION}
        )
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"].startswith(f"[{name1}]")
        ids.append(reply.json()["interaction_id"])
    with gateway.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "support", "messages": QUESTION, "stream": True},
    ) as streamed:
        body = "".join(streamed.iter_text())
        ids.append(streamed.headers["X-Interaction-Id"])
    assert name1 in body and name2 not in body, "the client sees production only"

    rows = shadows(gateway, len(ids))
    assert sorted(r.shadow_of for r in rows) == sorted(ids)
    assert all(r.adapter_version == v2 and r.status_code == 200 for r in rows)
    assert all((r.response_text or "").startswith(f"[{name2}]") for r in rows)
    assert all(r.request["messages"] == QUESTION for r in rows)

    stats = gateway.get("/v1/stats").json()
    assert sum(row["requests"] for row in stats["rows"]) == len(ids), "shadows are not traffic"
    pinned = gateway.post(
        "/v1/chat/completions", json={"model": f"support@{v1}", "messages": QUESTION}
    )
    assert pinned.status_code == 200
    off = gateway.post("/admin/aliases/support/shadow", json={"version": None})
    assert off.json()["shadow_version"] is None
    gateway.post("/v1/chat/completions", json={"model": "support", "messages": QUESTION})
    time.sleep(0.5)
    assert len(shadows(gateway, 0)) == len(ids), "pinned requests and a stopped shadow add none"
