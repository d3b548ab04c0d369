"""Fixtures shared by unit and integration tests.

Database tests run against SQLite and a real PostgreSQL server: `make test` makes sure
one answers (scripts/ensure-postgres.sh) and passes its URL in LORALOOP_TEST_PG_URL.
A PostgreSQL that does not answer fails the tests; it is never skipped.
"""

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from feedback.settings import FeedbackSettings
from loraloop import db
from loraloop.app import create_app
from loraloop.launch import free_port
from loraloop.settings import DatabaseSettings, Settings, WorkerSettings
from retrain.settings import RetrainSettings
from serve.settings import EngineSettings, ModelSettings, RolloutSettings, ServeSettings
from serve.tracing import Tracing
from tests.utils import REPO
from tests.utils.clients import local_client
from tests.utils.postgres import reset_schema
from tests.utils.processes import ENGINE_KEY
from tests.utils.s3 import S3Server


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 API server process (moto's) for the session's object-store tests."""
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin_url = os.environ.get(
        "LORALOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"loraloop_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind; the PostgreSQL one is emptied again afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loraloop.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    yield url
    reset_schema(url)


@pytest.fixture
def fake_model_dir(tmp_path: Path) -> Path:
    """A directory that passes the structural model check (for the fake engine)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    (model / "tokenizer.json").write_text("{}")
    return model


# --- a gateway on the fake engine (unit tests) ---


def gateway_settings(
    tmp_path: Path,
    db_url: str,
    model_dir: Path,
    engine_urls: list[str] | None = None,
    feedback: dict[str, object] | None = None,
    **serve: object,
) -> Settings:
    in_gateway = bool(serve.pop("worker", False))
    rollout = dict(serve.pop("rollout", None) or {})  # type: ignore[call-overload]
    return Settings(
        serve=ServeSettings(
            **{  # type: ignore[arg-type]
                "port": free_port(),
                "adapter_store": tmp_path / "adapters",
                "templates_dir": REPO / "prompt_templates",
                "reconcile_interval_s": 0.2,
                "drain_timeout_s": 5,
                "require_keys": False,  # open mode, as `make run`; tests that need keys say so
                **serve,
            }
        ),
        engine=EngineSettings(
            entrypoint="tests.fake_engine",
            port=free_port(),
            log_dir=tmp_path / "logs",
            startup_timeout_s=30,
            urls=engine_urls or [],
            api_key=ENGINE_KEY,
            api_key_file=tmp_path / "engine.key",
        ),
        model=ModelSettings(path=model_dir, name="base"),
        db=DatabaseSettings(url=db_url),
        feedback=FeedbackSettings(
            **{  # type: ignore[arg-type]
                "capture_spool_path": tmp_path / "spool.jsonl",
                "capture_retry_interval_s": 0.2,
                **(feedback or {}),
            }
        ),
        # The scheduler has its own tests; gateway tests start without it.
        worker=WorkerSettings(in_gateway=in_gateway),
        rollout=RolloutSettings(**rollout),
        retrain=RetrainSettings(runs_dir=tmp_path / "runs"),
    )


@pytest.fixture
def migrated_db(db_url: str) -> str:
    """An empty database of each kind, migrated to head."""
    db.upgrade(db_url)
    return db_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    db.upgrade(url)
    return url


@pytest.fixture
def make_gateway(tmp_path: Path, fake_model_dir: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(
        db_url: str,
        engine_urls: list[str] | None = None,
        feedback: dict[str, object] | None = None,
        peer: str = "127.0.0.1",
        tracing: Tracing | None = None,
        **serve: object,
    ) -> TestClient:
        """`peer`: the address every request comes from (default: this machine)."""
        settings = gateway_settings(
            tmp_path, db_url, fake_model_dir, engine_urls, feedback, **serve
        )
        settings.serve.adapter_store.mkdir(parents=True, exist_ok=True)
        client = local_client(create_app(settings, tracing=tracing), peer)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def gateway(migrated_db: str, make_gateway: Callable[..., TestClient]) -> TestClient:
    """A gateway on each database kind (migrated_db first: its reset runs after shutdown)."""
    return make_gateway(migrated_db)


@pytest.fixture
def store(gateway: TestClient) -> Path:
    return gateway.app.state.router.registry.store  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def make_live_gateway(tmp_path: Path, fake_model_dir: Path) -> Iterator[Callable[..., Settings]]:
    """A gateway served by uvicorn on a real port (for HTTP clients, the CLI, load)."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def make(db_url: str, feedback: dict[str, object] | None = None, **serve: object) -> Settings:
        settings = gateway_settings(tmp_path, db_url, fake_model_dir, None, feedback, **serve)
        settings.serve.adapter_store.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a free port can be taken by another process before we bind it
            config = uvicorn.Config(
                create_app(settings), host="127.0.0.1", port=settings.serve.port,
                log_level="warning",
            )  # fmt: skip
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 30
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if server.started:
                break
            thread.join(30)
            settings.serve.port, settings.engine.port = free_port(), free_port()
        assert server.started, "gateway did not start"
        servers.append((server, thread))
        return settings

    yield make
    for server, thread in servers:
        server.should_exit = True
        thread.join(30)
