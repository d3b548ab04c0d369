"""Golden sets through the API (admins pin, reviewers read) and the CLI (import a file,
list, unpin); items are frozen when pinned. Preference pairs for the judge's agreement."""

import json
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from feedback.models import Interaction, Review
from feedback.preferences import preference_pairs
from loraloop.cli import app
from serve.auth import create_key
from tests.utils.clients import JSON


def ask(client: TestClient, text: str, headers: dict[str, str]) -> str:
    body = {"model": "base", "messages": [{"role": "user", "content": text}]}
    response = client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["interaction_id"])


def review(client: TestClient, iid: str, score: int, correction: str | None = None,
           labels: list[str] | None = None) -> None:  # fmt: skip
    """A reviewer's verdict, stored as the review API stores it (the queue is tested apart)."""
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        session.add(Review(interaction_id=iid, reviewer_id="r1", score=score,
                           correction=correction, labels=labels or []))  # fmt: skip
        session.commit()


def test_admins_pin_reviewed_items_and_reviewers_read_the_set(
    make_gateway: Callable[..., TestClient], migrated_db: str
) -> None:
    gw = make_gateway(migrated_db, require_keys=True)
    with Session(gw.app.state.db) as session:  # type: ignore[attr-defined]
        admin, reviewer, client = (
            {"Authorization": f"Bearer {create_key(session, role)}"}
            for role in ("admin", "reviewer", "client")
        )
    corrected = ask(gw, "my email is ana@example.com, what is the fee?", client)
    good, unreviewed = ask(gw, "hello", client), ask(gw, "hi", client)
    gw.app.state.capture.flush()  # type: ignore[attr-defined]
    time.sleep(0.1)
    review(gw, corrected, 2, "The fee is EUR 65.", ["wrong"])
    review(gw, good, 5)

    pin = gw.post("/v1/golden/support", json={"interaction_id": corrected}, headers=admin)
    assert pin.status_code == 201, pin.text
    item = pin.json()
    assert item["question"] == "my email is [EMAIL], what is the fee?"
    assert item["reference"] == "The fee is EUR 65." and item["labels"] == ["wrong"]
    assert (
        gw.post("/v1/golden/support", json={"interaction_id": good}, headers=admin).status_code
        == 201
    )

    refusals = {
        (unreviewed, "admin"): (422, "has no review"),
        (corrected, "admin"): (409, "already in the golden set"),
        ("f" * 32, "admin"): (404, "does not exist"),
        (good, "reviewer"): (403, ""),
    }
    for (iid, role), (status, words) in refusals.items():
        headers = admin if role == "admin" else reviewer
        response = gw.post("/v1/golden/support", json={"interaction_id": iid}, headers=headers)
        assert response.status_code == status, response.text
        assert words in response.text

    # frozen: a later correction does not move the pinned reference
    review(gw, corrected, 1, "Something else entirely.")
    listed = gw.get("/v1/golden/support", headers=reviewer).json()
    assert [i["reference"] for i in listed["items"] if i["key"] == corrected] == [
        "The fee is EUR 65."
    ]
    assert len(listed["items"]) == 2 and len(listed["hash"]) == 64
    assert gw.get("/v1/golden/other", headers=reviewer).json()["items"] == []

    assert gw.delete(f"/v1/golden/support/{good}", headers=reviewer | JSON).status_code == 403
    assert gw.delete(f"/v1/golden/support/{good}", headers=admin | JSON).status_code == 204
    assert gw.delete(f"/v1/golden/support/{good}", headers=admin | JSON).status_code == 404
    after = gw.get("/v1/golden/support", headers=reviewer).json()
    assert len(after["items"]) == 1 and after["hash"] != listed["hash"]


def test_cli_imports_a_file_lists_and_unpins(migrated_db: str, tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"},
                      {"role": "assistant", "content": f"answer {i}"}],
         "template": "faq", "labels": ["tone"] if i == 0 else []}
        for i in range(3)
    ]  # fmt: skip
    path = tmp_path / "golden.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {"LORALOOP_DB_URL": migrated_db, "COLUMNS": "200"}
    runner = CliRunner()
    first = runner.invoke(app, ["golden", "import", "support", str(path)], env=env)
    assert first.exit_code == 0, first.output
    assert "3 added, 0 already there; support has 3 golden items" in first.output
    again = runner.invoke(app, ["golden", "import", "support", str(path)], env=env)
    assert "0 added, 3 already there" in again.output
    listed = runner.invoke(app, ["golden", "list", "support"], env=env)
    assert "golden.jsonl:1" in listed.output and "3 items, sha256" in listed.output
    gone = runner.invoke(app, ["golden", "unpin", "support", "golden.jsonl:2"], env=env)
    assert gone.exit_code == 0 and "removed golden.jsonl:2" in gone.output
    missing = runner.invoke(app, ["golden", "unpin", "support", "golden.jsonl:2"], env=env)
    assert missing.exit_code == 1 and "is not in the golden set" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}]}\n')
    refused = runner.invoke(app, ["golden", "import", "support", str(bad)], env=env)
    assert refused.exit_code == 1 and "bad.jsonl:1: needs a 'messages' list" in refused.output
    unknown = runner.invoke(app, ["golden", "pin", "support", "f" * 32], env=env)
    assert unknown.exit_code == 1 and "does not exist" in unknown.output


def test_preference_pairs_come_from_differently_scored_answers_to_one_question(
    make_gateway: Callable[..., TestClient], migrated_db: str
) -> None:
    gw = make_gateway(migrated_db)
    first, second, third = (ask(gw, "What is the fee?", {}) for _ in range(3))
    lonely = ask(gw, "Another question", {})
    gw.app.state.capture.flush()  # type: ignore[attr-defined]
    time.sleep(0.1)
    with Session(gw.app.state.db) as session:  # type: ignore[attr-defined]
        for n, iid in enumerate((first, second, third, lonely)):
            row = session.get(Interaction, iid)
            assert row is not None
            row.response_text = f"answer {n}"
            session.add(row)
        session.commit()
    for iid, score in ((first, 5), (second, 2), (third, 4), (lonely, 1)):
        review(gw, iid, score)
    with Session(gw.app.state.db) as session:  # type: ignore[attr-defined]
        pairs = preference_pairs(session, None, 10)
        assert preference_pairs(session, "support", 10) == []  # another alias's traffic
        assert len(preference_pairs(session, None, 1)) == 1
    assert [(p.better, p.worse, p.gap) for p in pairs] == [
        ("answer 0", "answer 1", 3),  # widest gap first
        ("answer 2", "answer 1", 2),
        ("answer 0", "answer 2", 1),
    ]
