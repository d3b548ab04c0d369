"""The app factory wires the engine manager and the database into the routes."""

from pathlib import Path

import httpx

from loraloop import db
from loraloop.app import create_app
from loraloop.settings import DatabaseSettings, Settings
from serve.settings import EngineSettings, ModelSettings, ServeSettings
from tests.utils.clients import local_client


def make_settings(db_url: str, model: Path, engine_port: int, tmp_path: Path) -> Settings:
    return Settings(
        serve=ServeSettings(require_keys=False),
        db=DatabaseSettings(url=db_url),
        model=ModelSettings(path=model, name="base"),
        engine=EngineSettings(
            entrypoint="tests.fake_engine",
            port=engine_port,
            log_dir=tmp_path / "logs",
            startup_timeout_s=30,
            api_key_file=tmp_path / "engine.key",
        ),
    )


def test_lifespan_starts_and_stops_engine_and_health_reports_it(
    db_url: str, fake_model_dir: Path, port: int, tmp_path: Path
) -> None:
    db.upgrade(db_url)
    settings = make_settings(db_url, fake_model_dir, port, tmp_path)
    app = create_app(settings)
    with local_client(app) as client:
        manager = app.state.engine
        response = client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["database"] == "ok"
        assert body["engine"]["state"] == "ready"
        assert body["engine"]["urls"] == [f"http://127.0.0.1:{port}"]
        # No key configured: the engine got a random one, kept where only its owner reads it,
        # and takes no orders without it; the gateway sends it.
        key_file = tmp_path / "engine.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        engine = f"http://127.0.0.1:{port}"
        refused = httpx.post(
            f"{engine}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/"}
        )
        assert refused.status_code == 401
        assert httpx.get(f"{engine}/v1/models").status_code == 401
        key = key_file.read_text()
        assert settings.engine.key() == key
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{engine}/v1/models", headers=auth).status_code == 200
        chat = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
    assert manager.state == "stopped"


def test_health_is_503_when_database_is_unreachable(
    fake_model_dir: Path, port: int, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    app = create_app(make_settings(url, fake_model_dir, port, tmp_path))
    with local_client(app) as client:
        response = client.get("/health")
        # The scheduler's job store is the database too: it waits, the gateway serves.
        assert not app.state.worker.scheduler.running
    assert response.status_code == 503
    assert response.json()["database"].startswith("error")
