"""Agent turns through review and export: the answer's tool calls shown, corrected through
the API and the page (checked against the request's tools), exported as training rows
with `tools` and the corrected `tool_calls`. On the fake engine, which calls the first
tool it is given with arguments naming every tool it got."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from feedback.pages import CSRF
from tests.utils.tools import LOOKUP

NOTIFY = {
    "type": "function",
    "function": {
        "name": "notify",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
}
ASK = {"role": "user", "content": "Where is order A-7?"}


@pytest.fixture
def gw(make_gateway: Callable[..., TestClient], sqlite_url: str) -> TestClient:
    return make_gateway(sqlite_url)


def ask(gw: TestClient, tools: list[dict[str, Any]] | None = None) -> str:
    body: dict[str, Any] = {"model": "base", "messages": [ASK]}
    if tools:
        body["tools"] = tools
    response = gw.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    gw.app.state.capture.flush()  # type: ignore[attr-defined]
    return str(response.json()["interaction_id"])


def correct(gw: TestClient, iid: str, calls: list[dict[str, Any]], score: int = 2) -> Any:
    body = {"interaction_id": iid, "score": score, "correction_tool_calls": calls}
    return gw.post("/v1/reviews", json=body)


def error(response: Any) -> str:
    return str(response.json()["error"]["message"])


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("calls", "problem"),
    [
        ([call("refund", {"order_id": "A-7"})], "'refund' is not one of the declared tools"),
        ([call("lookup_order", {"order_id": "7"})], "order_id: '7' does not match"),
        ([call("lookup_order", {"id": "A-7"})], "'order_id' is a required property"),
        ([call("lookup_order", "{not json")], "the arguments are not JSON"),
        ([call("lookup_order", '{"order_id": "A-7", "x": 1}')], "Additional properties"),
    ],
)
def test_a_tool_call_correction_must_be_valid_against_the_requests_tools(
    gw: TestClient, calls: list[dict[str, Any]], problem: str
) -> None:
    iid = ask(gw, [LOOKUP, NOTIFY])
    assert gw.get("/v1/reviews/next").json()["interaction_id"] == iid
    response = correct(gw, iid, calls)
    assert response.status_code == 422
    assert problem in error(response)
    assert gw.post("/v1/datasets/export", json={}).json()["rows"] == []


def test_reviews_show_correct_and_export_tool_calls(gw: TestClient) -> None:
    iid = ask(gw, [LOOKUP, NOTIFY])
    item = gw.get("/v1/reviews/next").json()
    assert item["interaction_id"] == iid
    assert [t["function"]["name"] for t in item["tools"]] == ["lookup_order", "notify"]
    answered = item["tool_calls"][0]
    assert answered["function"]["name"] == "lookup_order"

    same = correct(gw, iid, [answered])
    assert same.status_code == 422 and "repeat the answer" in error(same)
    fixed = [call("lookup_order", {"order_id": "A-7"}), call("notify", {"email": "ana@x.io"})]
    stored = correct(gw, iid, fixed)
    assert stored.status_code == 201, stored.text
    assert json.loads(stored.json()["correction_tool_calls"][0]["function"]["arguments"]) == {
        "order_id": "A-7"
    }

    export = gw.post("/v1/datasets/export", json={}).json()
    row = export["rows"][0]
    assert row["tools"] == [LOOKUP, NOTIFY]
    turn = row["messages"][-1]
    assert turn["role"] == "assistant" and turn["content"] == "[base] echo: Where is order A-7?"
    assert [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in turn["tool_calls"]
    ] == [("lookup_order", {"order_id": "A-7"}), ("notify", {"email": "[EMAIL]"})]
    assert export["manifest"]["counts"]["from_corrections"] == 1


def test_an_answer_approved_as_it_is_exports_its_own_tool_calls(gw: TestClient) -> None:
    iid = ask(gw, [LOOKUP])
    gw.get("/v1/reviews/next")
    assert gw.post("/v1/reviews", json={"interaction_id": iid, "score": 5}).status_code == 201
    turn = gw.post("/v1/datasets/export", json={}).json()["rows"][0]["messages"][-1]
    assert json.loads(turn["tool_calls"][0]["function"]["arguments"]) == {"seen": ["lookup_order"]}


def test_a_request_without_tools_cannot_be_corrected_to_a_call(gw: TestClient) -> None:
    iid = ask(gw)
    gw.get("/v1/reviews/next")
    response = correct(gw, iid, [call("lookup_order", {"order_id": "A-7"})])
    assert response.status_code == 422 and "declared no tools" in error(response)


def test_the_review_page_shows_the_call_and_takes_corrected_arguments(gw: TestClient) -> None:
    iid = ask(gw, [LOOKUP, NOTIFY])
    page = gw.get("/review")
    assert 'class="call-name">lookup_order</b>' in page.text
    assert "&#34;seen&#34;: [\n    &#34;lookup_order&#34;" in page.text, "indented JSON, escaped"
    assert 'id="declared-tools">tools: lookup_order, notify' in page.text
    form = {"interaction_id": iid, "score": "2", "csrf": gw.cookies[CSRF]}

    broken = form | {"call_name": "lookup_order", "call_arguments": '{"order_id": '}
    response = gw.post("/review/submit", data=broken, follow_redirects=False)
    assert "tool%20call%201%3A%20the%20arguments%20are%20not%20JSON" in response.headers["location"]

    good = form | {"call_name": "lookup_order", "call_arguments": '{"order_id": "A-7"}'}
    assert gw.post("/review/submit", data=good, follow_redirects=False).status_code == 303
    turn = gw.post("/v1/datasets/export", json={}).json()["rows"][0]["messages"][-1]
    assert turn["tool_calls"][0]["function"] == {
        "name": "lookup_order",
        "arguments": '{"order_id": "A-7"}',
    }


def test_an_answer_that_is_only_a_call_reaches_the_review_queue(gw: TestClient) -> None:
    """An answer made of a call alone comes back with `content: null` (OpenAI's form, and
    vLLM's tool parsers'); it is an answer all the same: reviewers get it, with its call."""
    body = {"model": "base", "messages": [ASK], "tools": [LOOKUP], "tool_choice": "required"}
    response = gw.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"]
    gw.app.state.capture.flush()  # type: ignore[attr-defined]
    item = gw.get("/v1/reviews/next")
    assert item.status_code == 200, item.text
    assert item.json()["interaction_id"] == response.json()["interaction_id"]
    assert item.json()["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert item.json()["response_text"] == ""


def test_an_empty_correction_clears_the_text_beside_a_call_only(gw: TestClient) -> None:
    """The answer said something and called: `correction: ""` keeps the call alone (the
    training target has no text); on an answer without calls it is refused, not stored;
    neither becomes a text-only preference pair."""
    iid = ask(gw, [LOOKUP])
    gw.get("/v1/reviews/next")
    body = {"interaction_id": iid, "score": 2, "correction": "  "}
    assert gw.post("/v1/reviews", json=body).status_code == 201
    turn = gw.post("/v1/datasets/export", json={}).json()["rows"][0]["messages"][-1]
    assert turn["content"] == "" and turn["tool_calls"][0]["function"]["name"] == "lookup_order"
    pairs = gw.post("/v1/datasets/preferences", json={}).json()
    assert pairs["rows"] == []
    rated = ask(gw, [LOOKUP])
    assert gw.post("/v1/feedback", json={"interaction_id": rated, "rating": "down"}).is_success
    judged = gw.post("/v1/datasets/preferences", json={"kind": "judged"}).json()
    assert judged["rows"] == [], "a call's answer would train as its text alone"
    left_out = judged["manifest"]["counts"]["left_out"]
    assert left_out == {"tool calls (preference rows carry text only)": 2}

    plain = ask(gw)
    gw.get("/v1/reviews/next")
    refused = gw.post("/v1/reviews", json={"interaction_id": plain, "score": 2, "correction": ""})
    assert refused.status_code == 422 and "needs text" in error(refused)
