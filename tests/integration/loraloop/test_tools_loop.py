"""Agent traffic through the whole loop on the real engine: served with tools, captured,
corrected by reviewers as tool calls, exported, trained on and gated by exact calls (a
template's tools reach the capture in tests/unit/serve/test_templates.py). How much the
adapter learns is measured in bench/tools.py: here a few steps keep the test short."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback.tool_calls import answer_text, calls_in
from retrain.evaluate import chat_many
from tests.helpers import make_adapter
from tests.integration.conftest import Platform
from tests.utils.platform import admin, cli

pytestmark = pytest.mark.integration
SCENARIO = Path(__file__).resolve().parents[3] / "retrain" / "scenarios" / "order_desk.jsonl"
TRAFFIC = 12


def review_all(http: httpx.Client, expected: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Correct every orders answer whose calls are not the scenario's; skip others'."""
    corrected = approved = 0
    while (item := http.get("/v1/reviews/next")).status_code == 200:
        body = item.json()
        iid, question = body["interaction_id"], body["messages"][-1]["content"]
        turn = expected.get(question)
        if turn is None or body["alias"] != "orders":
            http.post("/v1/reviews/skip", json={"interaction_id": iid})
            continue
        right = answer_text(turn.get("content"), turn.get("tool_calls"))
        review: dict[str, Any] = {"interaction_id": iid, "score": 5}
        if calls_in(right) != calls_in(answer_text(body["response_text"], body["tool_calls"])):
            review = {**review, "score": 1, "correction_tool_calls": turn["tool_calls"]}
            corrected += 1
        else:
            approved += 1
        assert http.post("/v1/reviews", json=review).status_code == 201
    return corrected, approved


def test_tool_calls_go_through_capture_review_export_training_and_the_gate(
    platform: Platform, tmp_path: Path
) -> None:
    rows = [json.loads(line) for line in SCENARIO.read_text().splitlines()]
    lookups = [r for r in rows if "lookup_order" in json.dumps(r["messages"][-1])]
    traffic = [r for r in lookups if not r["heldout"]][:TRAFFIC]
    # one tool keeps prompts short: training on CPU is the test's cost
    tools = [t for t in rows[0]["tools"] if t["function"]["name"] == "lookup_order"]
    make_adapter(platform.model_dir, platform.adapter_store / "orders-v1", identity=True)
    admin(platform, "/adapters", {"name": "orders", "path": "orders-v1"})
    admin(platform, "/aliases/orders/promote", {"version": 1})

    asked = [[{"role": "user", "content": r["messages"][0]["content"]}] for r in traffic]
    bodies = chat_many(platform.gateway_url, "orders", asked, 48, 8, tools=[tools] * TRAFFIC)
    assert all(b["interaction_id"] for b in bodies)
    expected = {r["messages"][0]["content"]: r["messages"][-1] for r in traffic}
    with httpx.Client(base_url=platform.gateway_url, timeout=120) as http:
        corrected, approved = review_all(http, expected)
    assert corrected + approved == TRAFFIC, "every captured tool answer reached the queue"
    assert corrected >= 1, "the base model made every call right: nothing to learn from"

    runs = tmp_path / "runs"
    run = cli(
        platform,
        runs,
        "retrain",
        "run",
        "--alias",
        "orders",
        LORALOOP_RETRAIN_MIN_EXAMPLES="6",
        LORALOOP_RETRAIN_EVAL_FRACTION="0.25",
        LORALOOP_RETRAIN_MAX_STEPS="2",
        LORALOOP_RETRAIN_BATCH_SIZE="4",
        LORALOOP_RETRAIN_EVAL_MAX_TOKENS="40",  # a lookup call is about 30 tokens
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    run_id = re.search(r"report: \S+/orders/(\S+)/report.html", run.stdout)
    assert run_id, run.stdout
    folder = runs / "orders" / run_id[1]
    record = json.loads((folder / "run.json").read_text())
    assert record["train_examples"] + record["eval_examples"] == TRAFFIC, record
    # the gate scored calls: each held-out reference is the exact call the reviewer wanted
    lines = (folder / "eval_predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    wanted = [calls_in(answer_text(None, t["tool_calls"]))[0] for t in expected.values()]
    assert predictions and all(calls_in(p["reference"])[0] in wanted for p in predictions)
    held_out = record["evaluations"][0]
    assert 0 <= held_out["candidate"]["rouge_l"] <= 1, held_out
    assert any(word in run.stdout for word in ("promoted", "rejected")), run.stdout[-2000:]
