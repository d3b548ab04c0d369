"""Preference data from every judgment through the admin API and the CLI: end-user thumbs
and stars, reviewer scores and corrections become KTO rows (reviewers over end users) and
correction pairs join pairwise choices as DPO rows."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from feedback.models import Review
from feedback.settings import FeedbackSettings
from loraloop.cli import app as cli

# question -> (end-user rating or None, review (score, correction) or None)
PLAN: dict[str, tuple[str | int | None, tuple[int, str | None] | None]] = {
    "liked": ("up", None),
    "disliked": ("down", None),
    "lukewarm": (3, None),  # 3 stars: neither
    "overruled": (5, (1, None)),  # the user liked it, a reviewer scored it 1
    "corrected": ("up", (2, "Call us at +1 (555) 123-4567 today.")),
    "middling": (None, (3, None)),  # a review between the thresholds
    "approved": (None, (5, None)),
    "unjudged": (None, None),
}


def judged_traffic(gateway: TestClient) -> dict[str, str]:
    ids = {}
    for question in PLAN:
        body = {"model": "base", "messages": [{"role": "user", "content": question}]}
        ids[question] = gateway.post("/v1/chat/completions", json=body).json()["interaction_id"]
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    for question, (rating, _) in PLAN.items():
        if rating is not None:
            sent = gateway.post(
                "/v1/feedback", json={"interaction_id": ids[question], "rating": rating}
            )
            assert sent.status_code == 200, sent.text
    by_id = {i: q for q, i in ids.items()}
    for _ in PLAN:
        item = gateway.get("/v1/reviews/next")
        if item.status_code == 204:
            break
        iid = item.json()["interaction_id"]
        review = PLAN[by_id[iid]][1]
        if review is None:
            assert gateway.post("/v1/reviews/skip", json={"interaction_id": iid}).status_code == 204
            continue
        score, correction = review
        if by_id[iid] == "approved":  # the answer again, other spacing: not a correction
            again = {"interaction_id": iid, "score": 5, "correction": "[base]  echo:\napproved"}
            refused = gateway.post("/v1/reviews", json=again)
            assert refused.status_code == 422 and "repeats the answer" in refused.text
        body = {"interaction_id": iid, "score": score, "correction": correction}
        assert gateway.post("/v1/reviews", json=body).status_code == 201
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        # stored before corrections were checked: it counts as approval, never as a pair
        session.add(Review(interaction_id=ids["approved"], reviewer_id="legacy", score=5,
                           correction="[base] echo:  approved"))  # fmt: skip
        session.commit()
    return ids


def test_judged_answers_and_pairs(gateway: TestClient, migrated_db: str, tmp_path: Path) -> None:
    ids = judged_traffic(gateway)
    judged = gateway.post("/v1/datasets/preferences", json={"kind": "judged"}).json()
    rows, manifest = judged["rows"], judged["manifest"]
    labels = {(r["interaction_id"], r["source"]): r["label"] for r in manifest["row_ids"]}
    assert labels == {
        (ids["liked"], "end_user"): True,
        (ids["disliked"], "end_user"): False,
        (ids["overruled"], "review"): False,  # the reviewer's 1 beats the user's 5 stars
        (ids["corrected"], "review"): False,  # a corrected answer was not good enough
        (ids["corrected"], "correction"): True,
        (ids["approved"], "review"): True,
    }
    assert manifest["counts"]["desirable"] == 3 and manifest["counts"]["undesirable"] == 3
    assert manifest["counts"]["left_out"] == {
        "end user overruled by reviewers": 2,  # "overruled" and "corrected"
        "reviews between thresholds": 1,
        "stars between thresholds": 1,
    }
    assert set(rows[0]) == {"prompt", "completion", "label"}, "TRL's KTO columns, no others"
    correction = next(r for r in rows if r["completion"][0]["content"].startswith("Call"))
    assert correction["completion"][0]["content"] == "Call us at [PHONE] today."
    assert correction["prompt"] == [{"role": "user", "content": "corrected"}]
    assert manifest["pii_scrubbed"] == {"PHONE": 1}

    pairs = gateway.post("/v1/datasets/preferences", json={}).json()
    assert pairs["manifest"]["counts"] == {
        "rows": 1,
        "by_source": {"correction": 1, "pairwise": 0},
        "skipped": {"correction equals the answer": 1},
    }
    assert pairs["rows"] == [{
        "prompt": [{"role": "user", "content": "corrected"}],
        "chosen": [{"role": "assistant", "content": "Call us at [PHONE] today."}],
        "rejected": [{"role": "assistant", "content": "[base] echo: corrected"}],
    }]  # fmt: skip

    out = tmp_path / "kto.jsonl"
    run = CliRunner().invoke(
        cli,
        ["dataset", "preferences", "--kind", "judged", "--out", str(out)],
        env={"LORALOOP_DB_URL": migrated_db},
    )
    assert run.exit_code == 0, run.output
    assert "6 judged rows (3 desirable, 3 undesirable)" in run.output
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    stars = CliRunner().invoke(
        cli,
        ["dataset", "preferences", "--kind", "judged", "--out", str(out)],
        env={"LORALOOP_DB_URL": migrated_db, "LORALOOP_FEEDBACK_DESIRABLE_STARS": "3"},
    )
    assert "7 judged rows (4 desirable, 3 undesirable)" in stars.output, "3 stars count now"


def test_thresholds_must_leave_a_gap() -> None:
    with pytest.raises(ValueError, match="undesirable_score must be below desirable_score"):
        FeedbackSettings(desirable_score=3, undesirable_score=3)
    with pytest.raises(ValueError, match="undesirable_stars must be below desirable_stars"):
        FeedbackSettings(desirable_stars=2)
