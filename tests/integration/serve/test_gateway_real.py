"""The gateway in front of the real vLLM engine, used through the official openai SDK."""

import http.client
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import Platform
from tests.utils.adapters import make_adapter
from tests.utils.platform import admin, stored

pytestmark = pytest.mark.integration
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def sdk(platform: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key="unused-on-loopback")


def test_sdk_chat_completion(sdk: openai.OpenAI, platform: Platform) -> None:
    completion = sdk.chat.completions.create(
        model=platform.model, messages=QUESTION, max_tokens=20, temperature=0
    )
    assert "Paris" in (completion.choices[0].message.content or "")
    assert completion.model == platform.model
    interaction_id = completion.model_extra["interaction_id"]  # type: ignore[index]
    record = stored(platform, interaction_id)
    assert record.response_text == completion.choices[0].message.content
    assert record.completion_tokens == completion.usage.completion_tokens  # type: ignore[union-attr]


def test_sdk_streaming_with_usage(sdk: openai.OpenAI, platform: Platform) -> None:
    stream = sdk.chat.completions.create(
        model=platform.model,
        messages=QUESTION,
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    record = stored(platform, chunks[0].model_extra["interaction_id"])  # type: ignore[index]
    assert record.response_text == text
    assert record.ttft_ms is not None and 0 < record.ttft_ms <= record.latency_ms


def test_sdk_template_and_errors(sdk: openai.OpenAI, platform: Platform) -> None:
    completion = sdk.chat.completions.create(
        model=platform.model,
        messages=[{"role": "user", "content": "I was charged twice."}],
        extra_body={"template": "ticket-classifier"},
    )
    record = stored(platform, completion.model_extra["interaction_id"])  # type: ignore[index]
    assert record.template == "ticket-classifier"
    assert record.rendered_messages is not None and record.rendered_messages[0]["role"] == "system"

    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="no-such-alias", messages=QUESTION)
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model=platform.model, messages=QUESTION, max_tokens=100_000)
    assert info.value.status_code == 400
    with pytest.raises(openai.UnprocessableEntityError):
        sdk.chat.completions.create(
            model=platform.model, messages=QUESTION, extra_body={"template": "support-agent"}
        )


def test_promote_and_rollback_under_load_fail_no_request(
    sdk: openai.OpenAI, platform: Platform
) -> None:
    for seed, name in ((1, "v1"), (2, "v2")):
        make_adapter(platform.model_dir, platform.adapter_store / name, seed=seed)
        admin(platform, "/adapters", {"name": "support", "path": name})
    admin(platform, "/aliases/support/promote", {"version": 1})

    outcomes: Counter[str] = Counter()
    served: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        client = openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key="x", max_retries=0)
        while not stop.is_set():
            try:
                c = client.chat.completions.create(model="support", messages=QUESTION, max_tokens=4)
                outcomes["ok"] += 1
                served[stored(platform, c.model_extra["interaction_id"]).adapter_version] += 1  # type: ignore[index]
            except openai.APIError as exc:
                outcomes[f"error {exc}"] += 1

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:  # a failed step must not leave the load running (and pytest waiting on it)
        time.sleep(3)
        promoted = admin(platform, "/aliases/support/promote", {"version": 2})
        assert promoted["production_version"] == 2
        time.sleep(3)
        assert admin(platform, "/aliases/support/rollback")["production_version"] == 1
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert set(outcomes) == {"ok"}, outcomes
    assert outcomes["ok"] >= 12
    assert served[1] > 0 and served[2] > 0, served
    models = {m.id for m in sdk.models.list()}
    assert {platform.model, "support", "support@1", "support@2"} <= models


def test_adapter_files_outside_store_are_refused(platform: Platform, tmp_path: Path) -> None:
    make_adapter(platform.model_dir, tmp_path / "stray", seed=3)
    response = httpx.post(
        f"{platform.gateway_url}/admin/adapters",
        json={"name": "stray", "path": str(tmp_path / "stray")},
        timeout=30,
    )
    assert response.status_code == 400
    assert "outside the adapter store" in response.json()["error"]["message"]


def test_an_idle_connection_outlives_a_clients_keep_alive(platform: Platform) -> None:
    """Clients (httpx: 5 s) and balancers (nginx, ALB: 60 s) reuse idle connections until
    their own timeout: a gateway that closed first would drop a request already sent on one
    (uvicorn's own default is 5 s, which races httpx's). `LORALOOP_SERVE_KEEP_ALIVE_S`."""
    host, port = platform.gateway_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", "/v1/models")
        assert connection.getresponse().read() and connection.sock is not None
        socket_before = connection.sock
        time.sleep(6)
        connection.request("GET", "/v1/models")  # raises RemoteDisconnected if it was closed
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        assert connection.sock is socket_before, "the same connection served both"
    finally:
        connection.close()
