"""Agent traffic through the whole loop on the real engine, as `loraloop demo --scenario
tools` runs it: served with tools, captured, corrected by reviewers as tool calls, exported,
trained on and gated by exact calls; tool-call accuracy before and after. Against a gateway
whose alias already serves, the demo trains the alias's next version from its own traffic
only. How much the adapter learns is measured in bench/tools.py: a few steps keep it short."""

import json
import re
from pathlib import Path

import pytest

from feedback.tool_calls import answer_text, calls_in
from loraloop.demo_tools import TOOLS_SCENARIO
from tests.integration.conftest import Platform
from tests.utils.adapters import make_adapter
from tests.utils.platform import admin, cli

pytestmark = pytest.mark.integration
TRAFFIC = 12


def test_the_tools_demo_goes_through_capture_review_export_training_and_the_gate(
    platform: Platform, tmp_path: Path
) -> None:
    make_adapter(platform.model_dir, platform.adapter_store / "orders-v1", identity=True)
    admin(platform, "/adapters", {"name": "orders", "path": "orders-v1"})
    admin(platform, "/aliases/orders/promote", {"version": 1})

    runs = tmp_path / "runs"
    ran = cli(
        platform,
        runs,
        "demo",
        "--scenario",
        "tools",
        "--gateway",
        platform.gateway_url,
        "--alias",
        "orders",
        "--limit",
        str(TRAFFIC),
        LORALOOP_RETRAIN_MIN_EXAMPLES="6",
        LORALOOP_RETRAIN_EVAL_FRACTION="0.25",
        LORALOOP_RETRAIN_MAX_STEPS="2",
        LORALOOP_RETRAIN_BATCH_SIZE="4",
        LORALOOP_RETRAIN_EVAL_MAX_TOKENS="40",  # a lookup call is about 30 tokens
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    out = ran.stdout
    reviews = re.search(r"agent traffic (\d+) · reviews: (\d+) corrected, (\d+) approved", out)
    assert reviews, out[-3000:]
    traffic, corrected, approved = map(int, reviews.groups())
    assert traffic == TRAFFIC and corrected + approved == TRAFFIC, "every answer was reviewed"
    assert corrected >= 1, "the model made every call right: nothing to learn from"
    accuracy = re.search(r"held-out exact tool calls: orders@1 ([\d.]+) -> orders (\S+)", out)
    assert accuracy, out[-3000:]
    assert 0 <= float(accuracy[1]) <= 1

    run_id = re.search(r"report: \S+/orders/(\S+)/report.html", out)
    assert run_id, out
    folder = runs / "orders" / run_id[1]
    record = json.loads((folder / "run.json").read_text())
    assert record["baseline"].startswith("orders@1-"), "the next version, against production"
    assert record["train_examples"] + record["eval_examples"] == TRAFFIC, record
    # the gate scored calls: each held-out reference is the exact call the scenario wants
    rows = [json.loads(line) for line in TOOLS_SCENARIO.read_text().splitlines()]
    train = [r for r in rows if not r["heldout"]][:TRAFFIC]
    wanted = [
        answer_text(r["messages"][-1]["content"], r["messages"][-1].get("tool_calls"))
        for r in train
    ]
    lines = (folder / "eval_predictions.jsonl").read_text().splitlines()
    rows_by_set = [json.loads(line) for line in lines]
    predictions = [p for p in rows_by_set if p["set"] != "retention"]  # general prompts
    assert predictions and all(p["reference"] in wanted for p in predictions)
    assert any(calls_in(p["reference"]) for p in predictions)
    held_out = record["evaluations"][0]
    assert 0 <= held_out["candidate"]["rouge_l"] <= 1, held_out
    if record["outcome"] == "promoted":
        assert accuracy[2] != "not", "a promoted adapter answers the held-out questions"
    else:
        assert record["outcome"] == "rejected" and accuracy[2] == "not"
