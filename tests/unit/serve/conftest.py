"""A gateway app on the fake engine, with a migrated database and an adapter store."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from feedback.settings import FeedbackSettings
from loraloop import db
from loraloop.app import create_app
from loraloop.settings import DatabaseSettings, Settings
from serve.settings import EngineSettings, ModelSettings, ServeSettings
from tests.conftest import REPO, free_port


def make_adapter_dir(
    store: Path, name: str, rank: int = 8, base: str = "/models/base", **extra: object
) -> Path:
    """A directory shaped like a peft adapter (the fake engine does not read weights)."""
    path = store / name
    path.mkdir(parents=True)
    config = {
        "r": rank,
        "lora_alpha": 16,
        "base_model_name_or_path": base,
        "target_modules": ["q_proj", "v_proj"],
        "peft_type": "LORA",
        **extra,
    }
    (path / "adapter_config.json").write_text(json.dumps(config))
    (path / "adapter_model.safetensors").write_bytes(name.encode())
    return path


def gateway_settings(tmp_path: Path, db_url: str, model_dir: Path, **serve: object) -> Settings:
    return Settings(
        serve=ServeSettings(
            port=free_port(),
            adapter_store=tmp_path / "adapters",
            templates_dir=REPO / "prompt_templates",
            reconcile_interval_s=0.2,
            drain_timeout_s=5,
            **serve,
        ),
        engine=EngineSettings(
            entrypoint="tests.fake_engine",
            port=free_port(),
            log_dir=tmp_path / "logs",
            startup_timeout_s=30,
        ),
        model=ModelSettings(path=model_dir, name="base"),
        db=DatabaseSettings(url=db_url),
        feedback=FeedbackSettings(
            capture_spool_path=tmp_path / "spool.jsonl", capture_retry_interval_s=0.2
        ),
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    db.upgrade(url)
    return url


@pytest.fixture
def make_gateway(tmp_path: Path, fake_model_dir: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(db_url: str, **serve: object) -> TestClient:
        settings = gateway_settings(tmp_path, db_url, fake_model_dir, **serve)
        settings.serve.adapter_store.mkdir(parents=True, exist_ok=True)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def gateway(make_gateway: Callable[..., TestClient], sqlite_url: str) -> TestClient:
    return make_gateway(sqlite_url)


@pytest.fixture
def store(gateway: TestClient) -> Path:
    return gateway.app.state.router.registry.store  # type: ignore[attr-defined,no-any-return]
