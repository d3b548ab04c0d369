"""GET /v1/stats: per alias and version, per window."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.ops import percentile
from tests.utils.adapters import make_adapter_dir


def test_stats_per_alias_and_version(gateway: TestClient, store: Path) -> None:
    gateway.post(
        "/admin/adapters", json={"name": "support", "path": str(make_adapter_dir(store, "o1"))}
    )
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    ids = []
    for model in ["support"] * 3 + ["base"] * 2:
        r = gateway.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        )
        ids.append(r.json()["interaction_id"])
    gateway.post("/v1/chat/completions", json={"model": "support", "messages": []})
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    gateway.post("/v1/feedback", json={"interaction_id": ids[0], "rating": "down"})
    gateway.post("/v1/feedback", json={"interaction_id": ids[1], "rating": "up"})
    for _ in range(2):
        item = gateway.get("/v1/reviews/next").json()
        body = {"interaction_id": item["interaction_id"], "score": 4}
        if item["alias"] == "support":
            body["correction"] = "better"
        gateway.post("/v1/reviews", json=body)

    rows = gateway.get("/v1/stats", params={"window": "hour"}).json()["rows"]
    by_key = {(r["alias"], r["adapter_version"]): r for r in rows}
    support = by_key[("support", 1)]
    assert support["requests"] == 4
    assert support["errors"] == 1, "the failed request counts, under its alias"
    assert support["thumbs_down_rate"] == 0.5 and support["rated"] == 2
    assert support["latency_p50_ms"] > 0
    assert by_key[(None, None)]["requests"] == 2
    reviewed = sum(r["reviewed"] for r in rows)
    assert reviewed == 2
    assert gateway.get("/v1/stats", params={"window": "week"}).status_code == 400


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
    q=st.floats(0, 1),
)
def test_percentile_is_numpys_for_any_q(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))


def test_percentile_edges_that_used_to_break() -> None:
    values = [float(v) for v in range(1, 201)]
    assert percentile(values, 0.995) == pytest.approx(np.percentile(values, 99.5))  # IndexError
    assert percentile(values, 0.001) == pytest.approx(np.percentile(values, 0.1))  # was p99
    assert percentile(values, 0.123) == pytest.approx(np.percentile(values, 12.3))  # was p12
    assert percentile(values, 0.95) == pytest.approx(190.05)  # unchanged where it was right
    assert percentile([], 0.5) is None and percentile([7.0], 0.3) == 7.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        percentile(values, 95)
