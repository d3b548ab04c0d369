"""OpenTelemetry traces of the inference path, through the real SDK, on the fake engine:
the span tree and its GenAI attributes, the client's traceparent carried to the engine, the
trace id on the interaction and in a header, content only when asked, sampling, off."""

import json
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode
from sqlmodel import Session

from feedback.models import Interaction
from serve.settings import TracingSettings
from serve.tracing import Tracing
from tests.utils.tracing import CLIENT_SPAN, TRACE_ID, TRACEPARENT, by_name, recording

CHAT = "/v1/chat/completions"
BODY = {
    "model": "base",
    "template": "support-agent",
    "variables": {"customer_name": "Ana"},
    "messages": [{"role": "user", "content": "Where is my invoice?"}],
    "max_tokens": 32,
    "temperature": 0.0,
}


def stored(client: TestClient, interaction_id: str) -> Interaction:
    client.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        row = session.get(Interaction, interaction_id)
    assert row is not None
    return row


def engine_traceparent(client: TestClient) -> str | None:
    url = client.app.state.replicas.urls[0]  # type: ignore[attr-defined]
    return httpx.get(f"{url}/fake/stats").json()["traceparent"]  # type: ignore[no-any-return]


def test_a_request_is_one_trace_from_the_client_through_the_engine(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    tracing, spans = recording()
    gateway = make_gateway(sqlite_url, tracing=tracing)
    response = gateway.post(CHAT, json=BODY, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200, response.text
    assert response.headers["X-Trace-Id"] == TRACE_ID
    row = stored(gateway, response.json()["interaction_id"])
    assert row.trace_id == TRACE_ID

    finished = spans.get_finished_spans()
    named = by_name(finished)
    [root] = [s for s in finished if s.kind == SpanKind.SERVER]
    [engine] = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert root.name == engine.name == "chat base"  # {operation} {model}, as the conventions say
    assert root.parent is not None and f"{root.parent.span_id:016x}" == CLIENT_SPAN
    assert {f"{s.context.trace_id:032x}" for s in finished} == {TRACE_ID}
    assert len(finished) == 5
    for child in ("render template", "route", "acquire adapter"):
        assert named[child].parent is not None
        assert named[child].parent.span_id == root.context.span_id
    assert engine.parent is not None and engine.parent.span_id == root.context.span_id
    # the engine got the gateway's span as its parent, in the same trace
    assert engine_traceparent(gateway) == f"00-{TRACE_ID}-{engine.context.span_id:016x}-01"

    a = root.attributes or {}
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.system"] == "vllm"
    assert a["gen_ai.request.model"] == "base" and a["gen_ai.response.model"] == "base"
    assert a["gen_ai.prompt.name"] == "support-agent" and a["loraloop.template_version"] == 1
    assert a["gen_ai.request.max_tokens"] == 32 and a["gen_ai.request.temperature"] == 0.0
    assert a["gen_ai.usage.output_tokens"] == row.completion_tokens
    assert a["gen_ai.usage.input_tokens"] == row.prompt_tokens
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["loraloop.interaction_id"] == response.json()["interaction_id"]
    assert a["http.response.status_code"] == 200
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # PII: off
    assert root.status.status_code == StatusCode.UNSET
    item = gateway.get("/v1/reviews/next")  # a reviewer's tool can open the request's trace
    assert item.status_code == 200 and item.json()["trace_id"] == TRACE_ID


def test_content_only_when_asked_and_streams_carry_time_to_first_chunk(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    tracing, spans = recording(instrumentation_genai_capture_message_content=True)
    gateway = make_gateway(sqlite_url, tracing=tracing)
    with gateway.stream("POST", CHAT, json=BODY | {"stream": True}) as response:
        assert response.status_code == 200
        trace_id = response.headers["X-Trace-Id"]
        assert [line for line in response.iter_lines() if line][-1] == "data: [DONE]"
    root = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert f"{root.context.trace_id:032x}" == trace_id and root.parent is None
    a = root.attributes or {}
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 30
    assert a["gen_ai.request.stream"] is True
    inputs = json.loads(str(a["gen_ai.input.messages"]))
    assert "You help Ana" in inputs[0]["parts"][0]["content"]  # the rendered template
    outputs = json.loads(str(a["gen_ai.output.messages"]))
    assert outputs[0]["parts"][0]["content"].startswith("[base] echo:")


def test_errors_are_on_the_span_and_a_dead_replica_is_a_failed_engine_call(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    tracing, spans = recording()
    gateway = make_gateway(sqlite_url, tracing=tracing)
    missing = gateway.post(CHAT, json=BODY | {"model": "nope"})
    assert missing.status_code == 404 and missing.headers["X-Trace-Id"]
    [root] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert (root.attributes or {})["error.type"] == "404"
    assert root.status.status_code == StatusCode.UNSET  # a client's error, not the server's
    assert by_name(spans.get_finished_spans())["route"].status.status_code == StatusCode.ERROR

    spans.clear()
    dead = make_gateway(sqlite_url, engine_urls=["http://127.0.0.1:9"], tracing=tracing)
    failed = dead.post(CHAT, json=BODY)
    assert failed.status_code == 502
    [root] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert root.status.status_code == StatusCode.ERROR
    assert "no engine replica answered" in str(root.status.description)
    for call in [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]:
        assert call.status.status_code == StatusCode.ERROR  # each try that found no engine


@pytest.mark.parametrize("tracing", [Tracing(), None], ids=["off", "sampled-out"])
def test_off_or_unsampled_the_clients_trace_still_reaches_the_engine_and_the_record(
    sqlite_url: str, make_gateway: Callable[..., TestClient], tracing: Tracing | None
) -> None:
    exporter = None
    if tracing is None:  # on, but a ratio of 0 samples nothing of its own
        tracing, exporter = recording(traces_sampler="traceidratio", traces_sampler_arg=0.0)
    gateway = make_gateway(sqlite_url, tracing=tracing)
    response = gateway.post(CHAT, json=BODY, headers={"traceparent": TRACEPARENT})
    assert response.headers["X-Trace-Id"] == TRACE_ID
    assert stored(gateway, response.json()["interaction_id"]).trace_id == TRACE_ID
    sent = engine_traceparent(gateway)
    assert sent is not None and sent.split("-")[1] == TRACE_ID
    alone = gateway.post(CHAT, json=BODY)  # no traceparent: off has no trace; unsampled has one
    stored_id = stored(gateway, alone.json()["interaction_id"]).trace_id
    assert stored_id == alone.headers.get("X-Trace-Id")
    assert (stored_id is None) == (not tracing.enabled)
    if exporter is not None:
        assert exporter.get_finished_spans() == ()


def test_tracing_is_off_unless_an_endpoint_is_set() -> None:
    assert not Tracing.from_settings(TracingSettings(), "x").enabled
    on = TracingSettings(exporter_otlp_endpoint="http://127.0.0.1:6006/")
    assert on.traces_endpoint == "http://127.0.0.1:6006/v1/traces"
    grpc = TracingSettings(exporter_otlp_endpoint="http://c:4317", exporter_otlp_protocol="grpc")
    assert grpc.traces_endpoint == "http://c:4317"
    headers = TracingSettings(exporter_otlp_headers="Authorization=Basic%20abc, x-team = ops")
    assert headers.headers() == {"Authorization": "Basic abc", "x-team": "ops"}
    tracing = Tracing.from_settings(on, "x")
    assert tracing.enabled
    tracing.shutdown()
