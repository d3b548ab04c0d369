"""Dataset export through the admin API and the CLI."""

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loraloop.cli import app


def test_export_rows_manifest_and_pii(
    make_gateway: Callable[..., TestClient], migrated_db: str
) -> None:
    gw = make_gateway(migrated_db)
    ids = {}
    for name, content in {
        "corrected": "my email is ana@example.com",
        "good": "hello",
        "bad": "hi",
    }.items():
        r = gw.post(
            "/v1/chat/completions",
            json={"model": "base", "messages": [{"role": "user", "content": content}]},
        )
        ids[name] = r.json()["interaction_id"]
    gw.app.state.capture.flush()  # type: ignore[attr-defined]
    scores = {
        "corrected": (1, "Call us at +1 (555) 123-4567."),
        "good": (5, None),
        "bad": (2, None),
    }
    for _ in range(3):
        item = gw.get("/v1/reviews/next").json()
        name = next(n for n, i in ids.items() if i == item["interaction_id"])
        score, correction = scores[name]
        assert (
            gw.post(
                "/v1/reviews",
                json={
                    "interaction_id": item["interaction_id"],
                    "score": score,
                    "correction": correction,
                },
            ).status_code
            == 201
        )

    result = gw.post("/v1/datasets/export", json={}).json()
    manifest, rows = result["manifest"], result["rows"]
    assert manifest["row_ids"] == [ids["corrected"], ids["good"]], "bad (score 2) is left out"
    assert manifest["counts"] == {"rows": 2, "from_corrections": 1, "from_responses": 1}
    assert manifest["pii_scrubbed"] == {"EMAIL": 1, "PHONE": 1}
    corrected = rows[0]["messages"]
    assert corrected[0] == {"role": "user", "content": "my email is [EMAIL]"}
    assert corrected[-1] == {"role": "assistant", "content": "Call us at [PHONE]."}
    assert rows[1]["messages"][-1]["content"] == "[base] echo: hello"
    assert len(manifest["content_sha256"]) == 64

    only_corrections = gw.post("/v1/datasets/export", json={"has_correction": True}).json()
    assert only_corrections["manifest"]["row_ids"] == [ids["corrected"]]
    low_bar = gw.post("/v1/datasets/export", json={"min_score": 2}).json()
    assert ids["bad"] in low_bar["manifest"]["row_ids"]
    none = gw.post("/v1/datasets/export", json={"alias": "support"}).json()
    assert none["rows"] == []
    bad_filter = gw.post("/v1/datasets/export", json={"min_score": 9})
    assert bad_filter.status_code == 400


def test_cli_export_writes_jsonl_and_manifest(
    make_gateway: Callable[..., TestClient], migrated_db: str, tmp_path: Path
) -> None:
    gw = make_gateway(migrated_db)
    r = gw.post(
        "/v1/chat/completions",
        json={"model": "base", "messages": [{"role": "user", "content": "reset my password"}]},
    )
    iid = r.json()["interaction_id"]
    gw.app.state.capture.flush()  # type: ignore[attr-defined]
    gw.get("/v1/reviews/next")
    gw.post(
        "/v1/reviews",
        json={"interaction_id": iid, "score": 2, "correction": "Use the 'Forgot password' link."},
    )
    out = tmp_path / "datasets" / "support.jsonl"
    result = CliRunner().invoke(
        app,
        ["dataset", "export", "--out", str(out), "--has-correction"],
        env={"LORALOOP_DB_URL": migrated_db},
    )
    assert result.exit_code == 0, result.output
    assert "1 rows (1 corrections)" in result.output
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["messages"][-1]["content"] == "Use the 'Forgot password' link."
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["row_ids"] == [iid]
    assert manifest["filters"] == {"has_correction": True}
