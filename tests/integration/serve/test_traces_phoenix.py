"""One request followed end to end in a real OTLP back-end: the platform (`loraloop run`,
real vLLM) traces to Arize Phoenix on loopback, and Phoenix's REST API gives back one trace
holding the chatbot backend's span as parent, the gateway's spans, and vLLM's own span under
the gateway's engine call. Run by `make test-traces` (Phoenix is a large install, so not
part of every `make test`)."""

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from loraloop.launch import free_port, launch
from tests.utils import REPO
from tests.utils.phoenix import Phoenix
from tests.utils.processes import ENGINE_KEY
from tests.utils.tracing import CLIENT_SPAN, TRACE_ID, TRACEPARENT

pytestmark = [pytest.mark.integration, pytest.mark.phoenix]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    server = Phoenix(tmp_path_factory.mktemp("phoenix")).start()
    yield server
    server.stop()


def trace_of(phoenix: Phoenix, want: int) -> list[dict[str, Any]]:
    """The trace's spans once `want` of them arrived (exporters batch for up to seconds)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        spans = phoenix.spans(TRACE_ID)
        if len(spans) >= want:
            return spans
        time.sleep(1)
    raise AssertionError(f"{len(spans)} spans of trace {TRACE_ID} arrived: {spans}")


def test_a_request_is_one_trace_in_phoenix_from_client_to_vllm(
    phoenix: Phoenix, tmp_path: Path, model_dir: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LORALOOP_DB_URL": f"sqlite:///{tmp_path / 'loraloop.db'}",
        "LORALOOP_SERVE_PORT": str(port),
        "LORALOOP_ENGINE_PORT": str(free_port()),
        "LORALOOP_ENGINE_LOG_DIR": str(tmp_path / "logs"),
        "LORALOOP_MODEL_PATH": str(model_dir),
        "LORALOOP_SERVE_ADAPTER_STORE": str(tmp_path / "adapters"),
        "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "LORALOOP_SERVE_REQUIRE_KEYS": "false",
        "LORALOOP_ENGINE_API_KEY": ENGINE_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix.url,
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
    (tmp_path / "adapters").mkdir()
    with launch(env, tmp_path / "platform.log", 600):
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"traceparent": TRACEPARENT},
            json={
                "model": model_dir.name,
                "template": "support-agent",
                "variables": {"customer_name": "Ana"},
                "messages": [{"role": "user", "content": "Where is my invoice?"}],
                "max_tokens": 8,
                "temperature": 0,
            },
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["X-Trace-Id"] == TRACE_ID
        spans = trace_of(phoenix, want=6)  # 5 of the gateway's, at least 1 of vLLM's
    by_id = {s["context"]["span_id"]: s for s in spans}
    [root] = [s for s in spans if s["parent_id"] == CLIENT_SPAN]
    assert root["name"] == f"chat {model_dir.name}"
    attributes = root["attributes"]
    assert attributes["gen_ai.system"] == "vllm"
    assert attributes["gen_ai.prompt.name"] == "support-agent"
    assert attributes["gen_ai.usage.output_tokens"] == reply.json()["usage"]["completion_tokens"]
    assert attributes["loraloop.interaction_id"] == reply.json()["interaction_id"]
    children = {s["name"] for s in spans if s["parent_id"] == root["context"]["span_id"]}
    assert {"render template", "route", "acquire adapter"} < children
    # vLLM's span hangs under the gateway's engine call, which hangs under the request
    engine_spans = [s for s in spans if s["attributes"].get("gen_ai.request.id")]
    assert engine_spans, [s["name"] for s in spans]
    call = by_id[engine_spans[0]["parent_id"]]
    assert call["parent_id"] == root["context"]["span_id"]
    assert call["name"] == f"chat {model_dir.name}" and call["attributes"]["loraloop.attempt"] == 1
    usage = engine_spans[0]["attributes"]["gen_ai.usage.completion_tokens"]
    assert usage == reply.json()["usage"]["completion_tokens"]
    db = create_engine(env["LORALOOP_DB_URL"])
    with db.connect() as connection:
        stored = connection.execute(
            text("SELECT trace_id FROM interaction WHERE id = :id"),
            {"id": reply.json()["interaction_id"]},
        ).scalar_one()
    db.dispose()
    assert stored == TRACE_ID
