"""The drift API on both databases: run a report, list, read the record and Evidently's page."""

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from feedback.jobs import job_lock
from feedback.models import utcnow
from serve.auth import create_key
from tests.utils.traffic import insert_traffic, rows


def headers(client: TestClient, role: str) -> dict[str, str]:
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {create_key(session, role)}"}


def test_run_list_read_and_page(make_gateway: Callable[..., TestClient], migrated_db: str) -> None:
    gw = make_gateway(migrated_db, require_keys=True)
    admin, reviewer = headers(gw, "admin"), headers(gw, "reviewer")
    empty = gw.post("/v1/drift/run", json={"alias": "support"}, headers=admin)
    assert empty.status_code == 201
    assert empty.json()["verdict"] == "not_enough_data"
    assert "reference has 0 rows, current 0" in empty.json()["reason"]

    now = utcnow()
    ref, _ = rows(150, now - timedelta(days=7), now - timedelta(days=1), seed=1)
    cur, _ = rows(150, now - timedelta(hours=20), now, seed=2, new_topic=0.6)
    insert_traffic(gw.app.state.db, ref + cur)  # type: ignore[attr-defined]
    made = gw.post("/v1/drift/run", json={"alias": "support"}, headers=admin).json()
    assert made["verdict"] == "drift" and made["reference_rows"] == 150

    listed = gw.get("/v1/drift/reports", params={"alias": "support"}, headers=reviewer).json()
    assert [r["id"] for r in listed["data"]] == [made["id"], empty.json()["id"]]
    only = gw.get("/v1/drift/reports", params={"verdict": "drift"}, headers=reviewer).json()
    assert [r["id"] for r in only["data"]] == [made["id"]]

    detail = gw.get(f"/v1/drift/reports/{made['id']}", headers=reviewer).json()
    columns = {c["column"]: c for c in detail["columns"]}
    assert columns["prompt_embedding"]["drifted"] is True
    assert columns["ttft_ms"]["status"] == "skipped"
    assert detail["evidently"]["metrics"]

    page = gw.get(detail["html_url"], headers=reviewer)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "prompt_chars" in page.text


def test_errors_and_roles(make_gateway: Callable[..., TestClient], migrated_db: str) -> None:
    gw = make_gateway(migrated_db, require_keys=True)
    admin, reviewer = headers(gw, "admin"), headers(gw, "reviewer")
    assert gw.get("/v1/drift/reports/999", headers=reviewer).status_code == 404
    assert gw.get("/v1/drift/reports/999.html", headers=reviewer).status_code == 404
    assert gw.get("/v1/drift/reports", headers=headers(gw, "client")).status_code == 403
    assert gw.get("/v1/drift/reports").status_code == 401
    forbidden = gw.post("/v1/drift/run", json={"alias": "support"}, headers=reviewer)
    assert forbidden.status_code == 403
    assert gw.post("/v1/drift/run", json={"alias": ""}, headers=admin).status_code == 400
    bad = gw.get("/v1/drift/reports", params={"verdict": "maybe"}, headers=reviewer)
    assert bad.status_code == 400

    with job_lock(gw.app.state.db, "drift:support", "someone-else", 60):  # type: ignore[attr-defined]
        busy = gw.post("/v1/drift/run", json={"alias": "support"}, headers=admin)
    assert busy.status_code == 409
    assert "already running" in busy.json()["error"]["message"]
    runs = gw.get("/v1/drift/reports", headers=reviewer).json()["data"]
    assert runs == []
