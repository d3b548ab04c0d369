"""The inference API on the fake engine: OpenAI shapes, streaming, errors, capture."""

import json

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from feedback.models import Interaction

CHAT = "/v1/chat/completions"


def chat(client: TestClient, content: str = "hello", **body: object):  # type: ignore[no-untyped-def]
    return client.post(
        CHAT, json={"model": "base", "messages": [{"role": "user", "content": content}], **body}
    )


def interactions(client: TestClient) -> list[Interaction]:
    client.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(Interaction).order_by(Interaction.created_at)))


def test_chat_completion_is_openai_shaped_and_captured(gateway: TestClient) -> None:
    response = chat(gateway, "what is up")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "base"
    assert body["choices"][0]["message"]["content"] == "[base] echo: what is up"
    assert response.headers["X-Interaction-Id"] == body["interaction_id"]

    [record] = interactions(gateway)
    assert record.id == body["interaction_id"]
    assert record.endpoint == "chat"
    assert record.response_text == "[base] echo: what is up"
    assert record.finish_reason == "stop"
    assert record.completion_tokens == 5
    assert record.latency_ms is not None and record.latency_ms > 0
    assert record.request["messages"][0]["content"] == "what is up"


def test_stream_relays_chunks_with_usage_and_captures_ttft(gateway: TestClient) -> None:
    with gateway.stream(
        "POST",
        CHAT,
        json={
            "model": "base",
            "messages": [{"role": "user", "content": "a b c"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ) as response:
        assert response.status_code == 200
        interaction_id = response.headers["X-Interaction-Id"]
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == "[base] echo: a b c"
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert {c["model"] for c in chunks} == {"base"}

    [record] = interactions(gateway)
    assert record.id == interaction_id
    assert record.response_text == text
    assert record.ttft_ms is not None and record.ttft_ms <= record.latency_ms
    assert record.completion_tokens == 5


def test_text_completions(gateway: TestClient) -> None:
    response = gateway.post("/v1/completions", json={"model": "base", "prompt": "once upon"})
    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == "[base] echo: once upon"
    assert interactions(gateway)[0].endpoint == "completions"


def assert_openai_error(response, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"]


def test_bad_inputs_get_openai_errors_and_are_captured(gateway: TestClient) -> None:
    malformed = gateway.post(
        CHAT, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_openai_error(malformed, 400, "not valid JSON")
    assert_openai_error(chat(gateway, model="nope"), 404, "'nope' does not exist")
    assert_openai_error(
        gateway.post(CHAT, json={"model": "base", "messages": []}),
        400,
        "messages must not be empty",
    )
    assert_openai_error(chat(gateway, max_tokens=100_000), 400, "maximum context length")
    assert_openai_error(chat(gateway, max_tokens=0), 400, "max_tokens")
    big = "x" * 2_000_000
    assert_openai_error(chat(gateway, big), 413, "exceeds")

    records = interactions(gateway)
    assert [r.status_code for r in records] == [400, 404, 400, 400, 400, 413]
    assert all(r.error for r in records)
    assert records[0].request["raw"] == "{not json"


def test_models_lists_base(gateway: TestClient) -> None:
    ids = [m["id"] for m in gateway.get("/v1/models").json()["data"]]
    assert ids == ["base"]


def test_metrics_count_requests_by_alias(gateway: TestClient) -> None:
    chat(gateway)
    chat(gateway, model="nope")
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    text = gateway.get("/metrics").text
    assert (
        'loraloop_requests_total{adapter_version="",alias="",endpoint="chat",status="200"} 1.0'
        in text
    )
    assert 'status="404"} 1.0' in text
    assert "loraloop_request_latency_seconds_bucket" in text
    assert "loraloop_capture_queue_depth" in text
    assert "loraloop_time_to_first_token_seconds" in text
