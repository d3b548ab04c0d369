"""Pairwise review of shadow answers through the API: blind order per reviewer, the choice
revealed after submitting, preference export for DPO (scrubbed, with a manifest), and the
win rate a rollout reads."""

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from feedback.models import Interaction
from feedback.pairwise import swapped, win_loss
from loraloop.cli import app as cli
from tests.utils.adapters import make_adapter_dir


def shadowed_traffic(gateway: TestClient, store: Path, questions: list[str]) -> tuple[str, str]:
    """Production v1 shadowed by v2; one request per question; wait for the shadows."""
    names = []
    for n in ("w1", "w2"):
        out = gateway.post(
            "/admin/adapters", json={"name": "support", "path": str(make_adapter_dir(store, n))}
        )
        names.append(out.json()["engine_name"])
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    gateway.post("/admin/aliases/support/shadow", json={"version": 2, "share": 1.0})
    for q in questions:
        body = {"model": "support", "messages": [{"role": "user", "content": q}]}
        assert gateway.post("/v1/chat/completions", json=body).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        gateway.app.state.capture.flush(5)  # type: ignore[attr-defined]
        with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
            found = session.exec(
                select(Interaction).where(col(Interaction.shadow_of).is_not(None))
            ).all()
        if len(found) == len(questions):
            break
        time.sleep(0.1)
    return names[0], names[1]


def test_blind_pairs_are_judged_revealed_and_exported(
    gateway: TestClient, store: Path, migrated_db: str, tmp_path: Path
) -> None:
    questions = ["my mail is ann@example.com, where is my parcel?", "refund please", "hours?"]
    production, shadow = shadowed_traffic(gateway, store, questions)
    seen = {}
    for _ in range(len(questions)):
        item = gateway.get("/v1/reviews/pairs/next")
        assert item.status_code == 200, item.text
        pair = item.json()
        again = gateway.get("/v1/reviews/pairs/next").json()
        assert (
            again["answers"] == pair["answers"] or again["interaction_id"] != pair["interaction_id"]
        )
        flipped = swapped("local", pair["interaction_id"])
        first = shadow if flipped else production
        assert pair["answers"][0].startswith(f"[{first}]"), "A/B follow the reviewer's order"
        question = pair["messages"][-1]["content"]
        # prefer the shadow on the first two questions (one with a correction), tie the third
        choice = "tie" if question == "hours?" else ("a" if flipped else "b")
        correction = "Refunds take 5 days." if question == "refund please" else None
        result = gateway.post("/v1/reviews/pairs", json={"interaction_id": pair["interaction_id"],
                              "preferred": choice, "correction": correction})  # fmt: skip
        assert result.status_code == 201, result.text
        assert result.json() == {"preferred": "tie" if choice == "tie" else "shadow",
                                 "production_version": 1, "shadow_version": 2}  # fmt: skip
        seen[question] = pair["interaction_id"]
    assert gateway.get("/v1/reviews/pairs/next").status_code == 204
    twice = gateway.post(
        "/v1/reviews/pairs", json={"interaction_id": seen["hours?"], "preferred": "a"}
    )
    assert twice.status_code == 409
    assert (
        gateway.post(
            "/v1/reviews/pairs", json={"interaction_id": "nope", "preferred": "a"}
        ).status_code
        == 404
    )

    exported = gateway.post("/v1/datasets/preferences", json={"alias": "support"}).json()
    rows, manifest = exported["rows"], exported["manifest"]
    assert manifest["counts"] == {
        "rows": 2,
        "by_source": {"correction": 0, "pairwise": 2},
        "skipped": {"tie": 1},
    }
    assert manifest["pii_scrubbed"] == {"EMAIL": 3}  # the prompt, and both echoing answers
    assert "ann@example.com" not in json.dumps(rows)
    by_prompt = {r["prompt"][-1]["content"]: r for r in rows}
    parcel = by_prompt["my mail is [EMAIL], where is my parcel?"]
    assert parcel["chosen"][0]["content"].startswith(f"[{shadow}]")
    assert parcel["rejected"][0]["content"].startswith(f"[{production}]")
    assert by_prompt["refund please"]["chosen"] == [
        {"role": "assistant", "content": "Refunds take 5 days."}
    ]
    assert set(rows[0]) == {"prompt", "chosen", "rejected"}, "TRL's DPO columns, no others"

    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        assert win_loss(session, "support", 2, 1) == (2, 0)

    out = tmp_path / "prefs.jsonl"
    cli_run = CliRunner().invoke(
        cli, ["dataset", "preferences", "--out", str(out)], env={"LORALOOP_DB_URL": migrated_db}
    )
    assert cli_run.exit_code == 0, cli_run.output
    assert len(out.read_text().splitlines()) == 2
    assert json.loads(out.with_suffix(".manifest.json").read_text())["counts"]["rows"] == 2
