"""An engine that refuses a load: the reason it gives is counted per alias, replica and
reason, and an object store that did not answer stays a 503 (retry later), not a 400."""

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from sqlmodel import Session

from loraloop import db
from serve.adapters import AdapterRouter
from serve.errors import EngineLoadError
from serve.metrics import GatewayMetrics
from serve.registry import Registry
from serve.replicas import ReplicaPool
from tests.utils.adapters import make_adapter_dir

URL = "http://engine-a:8100"


def refusing(status: int, code: str) -> httpx.MockTransport:
    """vLLM with the store plugin, answering every load with one error."""
    body = {"error": {"message": f"{code}: details", "type": code, "code": status}}
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (503, "adapter_store_unavailable", 503),
        (422, "adapter_object_corrupt", 400),
        (404, "adapter_object_missing", 400),
        (500, "InternalServerError", 400),
    ],
)
def test_a_refused_load_is_counted_with_its_reason(
    sqlite_url: str, tmp_path: Path, status: int, code: str, expected: int
) -> None:
    registry = Registry("base", tmp_path / "adapters", 16)
    with Session(db.create_db_engine(sqlite_url)) as session:
        version = registry.register(
            session, "support", make_adapter_dir(tmp_path / "adapters", "v1")
        )
        session.expunge(version)
    metrics = GatewayMetrics()
    client = httpx.AsyncClient(transport=refusing(status, code))
    router = AdapterRouter(
        registry, db.create_db_engine(sqlite_url), client, ReplicaPool([URL], client),
        "base", metrics=metrics,
    )  # fmt: skip
    with pytest.raises(EngineLoadError, match="details") as refused:
        asyncio.run(router.load_everywhere(version))
    assert refused.value.status == expected
    reason = code if code.startswith("adapter_") else "engine_refused"
    scraped = generate_latest(metrics.registry).decode()
    line = (
        f'loraloop_adapter_load_failures_total{{alias="support",reason="{reason}",'
        f'replica="{URL}"}} 1.0'
    )
    assert line in scraped, scraped
    assert router.loaded[URL] == set(), "nothing is held as loaded"
