"""The real vLLM engine started by `loraloop run`: base completions and a runtime LoRA."""

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Platform
from tests.utils.adapters import make_adapter
from tests.utils.processes import ENGINE_AUTH

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def chat(platform: Platform, model: str) -> str:
    response = httpx.post(
        f"{platform.engine_url}/v1/chat/completions",
        json={"model": model, "messages": QUESTION, "max_tokens": 24, "temperature": 0},
        headers=ENGINE_AUTH,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_gateway_health_reports_the_engine(platform: Platform) -> None:
    body = httpx.get(f"{platform.gateway_url}/health", timeout=10).json()
    assert body["status"] == "ok"
    assert body["engine"]["state"] == "ready"
    assert body["engine"]["urls"] == [platform.engine_url]


def test_base_model_answers(platform: Platform) -> None:
    assert "Paris" in chat(platform, platform.model)


def test_the_engine_takes_no_orders_without_its_key(platform: Platform, tmp_path: Path) -> None:
    """vLLM itself refuses inference and adapter loading to anyone without the engine key."""
    body = {"model": platform.model, "messages": QUESTION, "max_tokens": 4}
    assert httpx.post(f"{platform.engine_url}/v1/chat/completions", json=body).status_code == 401
    load = {"lora_name": "intruder", "lora_path": str(tmp_path)}
    assert httpx.post(f"{platform.engine_url}/v1/load_lora_adapter", json=load).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    refused = httpx.get(f"{platform.engine_url}/v1/models", headers=wrong)
    assert refused.status_code == 401


def test_runtime_loaded_lora_adapter_serves(platform: Platform, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    make_adapter(platform.model_dir, adapter)
    base_answer = chat(platform, platform.model)

    response = httpx.post(
        f"{platform.engine_url}/v1/load_lora_adapter",
        json={"lora_name": "it-random@1", "lora_path": str(adapter)},
        headers=ENGINE_AUTH,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    models = httpx.get(f"{platform.engine_url}/v1/models", headers=ENGINE_AUTH, timeout=10).json()
    assert "it-random@1" in {m["id"] for m in models["data"]}

    adapted = chat(platform, "it-random@1")
    assert adapted != base_answer
