"""The engine-side route that replaces vLLM's load_lora_adapter: an `s3://` path is fetched
and checked into this host's cache and loaded from there; a local path passes through; a
store failure answers its own status and loads nothing. vLLM's serving-models handler is
replaced by a recorder here; the real engine runs the plugin in the topology test."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loraloop.launch import free_port
from serve.store import AdapterCache, LocalStore, S3Store, content_hash
from serve.store.plugin import AdapterStorePlugin
from tests.utils.adapters import make_adapter_dir
from tests.utils.s3 import CREDENTIALS, S3Server


@dataclass
class Loaded:
    lora_path: str


@dataclass
class Recorder:
    """Stands in for vLLM's OpenAIServingModels: records what it was asked to load."""

    lora_requests: dict[str, Loaded] = field(default_factory=dict)

    async def load_lora_adapter(self, request: Any) -> str:
        self.lora_requests[request.lora_name] = Loaded(request.lora_path)
        return f"Success: LoRA adapter '{request.lora_name}' added successfully."


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def engine(store: object) -> tuple[TestClient, Recorder]:
    app = FastAPI()
    AdapterStorePlugin().attach_router(app)
    recorder = Recorder()
    app.state.openai_serving_models = recorder
    app.state.loraloop_store = store
    return TestClient(app), recorder


def s3(server: S3Server, cache: Path, endpoint: str | None = None) -> S3Store:
    return S3Store(
        "s3://engine-tests/fleet",
        AdapterCache(cache, 2**30),
        endpoint_url=endpoint or server.url,
        timeout_s=0.5,
    )


def test_an_s3_path_loads_from_the_checked_local_copy(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3(s3_server, tmp_path / "cache")
    source = make_adapter_dir(tmp_path / "src", "support")
    location = store.publish(source, "support", content_hash(source))
    client, recorder = engine(store)
    answer = client.post(
        "/v1/load_lora_adapter", json={"lora_name": "support@1", "lora_path": location}
    )
    assert answer.status_code == 200, answer.text
    loaded = Path(recorder.lora_requests["support@1"].lora_path)
    assert loaded.parent == tmp_path / "cache" and content_hash(loaded) == content_hash(source)


def test_a_local_path_passes_through(tmp_path: Path) -> None:
    client, recorder = engine(LocalStore())
    answer = client.post(
        "/v1/load_lora_adapter", json={"lora_name": "a", "lora_path": str(tmp_path)}
    )
    assert answer.status_code == 200
    assert recorder.lora_requests["a"].lora_path == str(tmp_path)


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("missing", 404, "no adapter published at"),
        ("down", 503, "did not answer"),
        ("unconfigured", 400, "set LORALOOP_STORE_URL"),
    ],
)
def test_store_failures_answer_clearly_and_load_nothing(
    s3_server: S3Server, tmp_path: Path, case: str, status: int, message: str
) -> None:
    if case == "unconfigured":
        store: object = LocalStore()
    else:
        down = f"http://127.0.0.1:{free_port()}" if case == "down" else None
        store = s3(s3_server, tmp_path / "cache", down)
    client, recorder = engine(store)
    location = f"s3://engine-tests/fleet/support/{'a' * 64}"
    answer = client.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": location})
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"]
    assert recorder.lora_requests == {}
