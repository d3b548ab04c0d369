"""The registry as it grows: thousands of versions and hundreds of aliases cost a request
no database query, a reconcile reads only what is new, and every list is paged."""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, insert
from sqlmodel import Session

from serve.adapters import AdapterRouter
from serve.tables import AdapterVersion, Alias, utcnow
from tests.utils.adapters import make_adapter_dir

ALIASES, VERSIONS_EACH = 300, 10
BODY = {"messages": [{"role": "user", "content": "hi"}]}


@contextmanager
def statements(db: Engine) -> Iterator[list[str]]:
    """Every SQL statement the gateway sends while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(db, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", record)


def fill(gateway: TestClient) -> None:
    """ALIASES aliases of VERSIONS_EACH versions each, written an hour ago, none in production
    (nothing to load), besides what the test registers through the API."""
    state = gateway.app.state  # type: ignore[attr-defined]
    path = make_adapter_dir(state.router.registry.store, "shared")
    hour_ago = utcnow() - timedelta(hours=1)
    rows = [
        {"name": f"customer-{a:04d}", "version": v, "engine_name": f"customer-{a:04d}-v{v}",
         "path": str(path), "base_model": "base", "rank": 8, "content_hash": "0" * 64,
         "created_at": hour_ago, "metrics": {}, "lineage": {}}
        for a in range(ALIASES) for v in range(1, VERSIONS_EACH + 1)
    ]  # fmt: skip
    with Session(state.db) as session:
        session.execute(insert(AdapterVersion), rows)
        session.execute(insert(Alias), [{"name": f"customer-{a:04d}"} for a in range(ALIASES)])
        session.commit()


def test_thousands_of_versions_page_and_reconcile_reads_only_what_is_new(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url, reconcile_interval_s=3600)  # no background reads
    router: AdapterRouter = gateway.app.state.router  # type: ignore[attr-defined]
    fill(gateway)
    store = router.registry.store
    made = gateway.post("/admin/adapters", json={"name": "live", "path": str(
        make_adapter_dir(store, "live-1"))})  # fmt: skip
    assert made.status_code == 201, made.text
    assert gateway.post("/admin/aliases/live/promote", json={"version": 1}).status_code == 200

    everything = gateway.get("/v1/models").json()
    assert len(everything["data"]) == 1 + 1 + ALIASES * VERSIONS_EACH + 1  # base, live, versions
    assert everything["has_more"] is False, "no limit: all of them, as OpenAI's SDK expects"
    walked: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 700, **({"after": after} if after else {})}
        chunk = gateway.get("/v1/models", params=params).json()
        walked += [card["id"] for card in chunk["data"]]
        if not chunk["has_more"]:
            break
        after = walked[-1]
    assert walked == [card["id"] for card in everything["data"]], "the pages are the list"
    bad = gateway.get("/v1/models", params={"after": "no-such-model"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"

    first = gateway.get("/admin/aliases", params={"name": "CUSTOMER-01", "limit": 40})
    assert first.headers["x-total-count"] == "100"  # customer-0100 … customer-0199
    assert [a["name"] for a in first.json()][:2] == ["customer-0100", "customer-0101"]
    following = re.fullmatch(r'<(.+)>; rel="next"', first.headers["link"])
    assert following is not None
    second = gateway.get(following.group(1))
    assert second.json()[0]["name"] == "customer-0140"
    last = gateway.get("/admin/adapters", params={"name": "customer-0299", "offset": 5})
    assert last.headers["x-total-count"] == str(VERSIONS_EACH) and "link" not in last.headers
    assert [v["version"] for v in last.json()] == list(range(6, VERSIONS_EACH + 1))
    assert gateway.get("/admin/adapters", params={"limit": 1001}).status_code == 400

    versions, _ = router._read_state()
    assert [v.name for v in versions] == ["live"], "old versions are not read again"
    with statements(gateway.app.state.db) as sent:  # type: ignore[attr-defined]
        for _ in range(20):
            assert gateway.post("/v1/chat/completions", json={**BODY, "model": "live"}
                                ).status_code == 200  # fmt: skip
    registry_reads = [s for s in sent if re.search(r"\b(FROM|JOIN)\s+(adapter_version|alias)\b", s)]
    assert registry_reads == [], "a request reads the registry from memory"
