"""Hostile input on the inference API: template injection, oversized and deeply nested
requests, and floods of unknown model names. Each gets a clear 4xx and costs little."""

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session, select

from feedback.models import Interaction
from serve.templates import TemplateSpec, TemplateStore, VariableError
from tests.utils.clients import JSON

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
SSTI = [
    "{{ 7 * 7 }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ config.items() }}{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
]


def error(response, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert fragment in body["message"], body
    assert body["type"]


@pytest.mark.parametrize("payload", SSTI)
def test_template_variables_are_data_never_template_code(
    payload: str, sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url)
    response = gateway.post(
        CHAT,
        json={
            "model": "base",
            "template": "support-agent",
            "variables": {"customer_name": payload, "company": payload},
            "messages": HI,
        },
    )
    assert response.status_code == 200, response.text
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        record = session.exec(select(Interaction)).one()
    system = record.rendered_messages[0]["content"]  # type: ignore[index]
    assert system.count(payload) == 2, "the value is inserted as it is, not evaluated"
    assert "49" not in system and "uid=" not in system and "<class" not in system


@pytest.mark.parametrize("code", SSTI[1:])
def test_a_template_file_cannot_reach_python_internals(code: str) -> None:
    spec = TemplateSpec(name="evil", system=code)
    with pytest.raises(VariableError, match="template error"):
        TemplateStore().render(spec, {}, HI)


@pytest.fixture
def gateway(sqlite_url: str, make_gateway: Callable[..., TestClient]) -> Iterator[TestClient]:
    yield make_gateway(sqlite_url)


def test_requests_asking_too_much_are_refused_and_captured(gateway: TestClient) -> None:
    chat = {"model": "base", "messages": HI}
    error(gateway.post(CHAT, json={**chat, "n": 10_000}), 400, "n may be at most 16")
    error(gateway.post(CHAT, json={**chat, "best_of": 99}), 400, "best_of may be at most 16")
    error(gateway.post(CHAT, json={**chat, "max_tokens": 10**12}), 400, "between 1 and 2048")
    error(gateway.post(CHAT, json={**chat, "max_completion_tokens": 10**6}), 400, "between 1 and")
    many = {"model": "base", "messages": HI * 10_000}
    error(gateway.post(CHAT, json=many), 400, "at most 512 messages")
    deep = b'{"model": "base", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    error(gateway.post(CHAT, content=deep, headers=JSON), 400, "nested more than 32 levels")
    nested = {"model": "base", "messages": HI, "metadata": {"a": [[[[[[[[[[[[]]]]]]]]]]]] * 3}}
    assert gateway.post(CHAT, json=nested).status_code == 200, "moderate nesting is fine"

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "base", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}]}'

    error(gateway.post(CHAT, content=chunks(), headers=JSON), 413, "exceeds")

    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        statuses = sorted(r.status_code for r in session.exec(select(Interaction)))
    assert statuses == [200] + [400] * 6 + [413], "every refusal is captured"


def test_other_routes_are_bounded_too(gateway: TestClient) -> None:
    body = b'{"interaction_id": "' + b"x" * 2_000_000 + b'", "rating": "up"}'
    error(gateway.post("/v1/feedback", content=body, headers=JSON), 413, "exceeds")

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65_536

    error(gateway.post("/v1/feedback", content=chunks(), headers=JSON), 413, "exceeds")
    deep = b'{"interaction_id": "x", "rating": "up", "comment": ' + b"[" * 50_000 + b"]" * 50_000
    response = gateway.post("/v1/feedback", content=deep + b"}", headers=JSON)
    assert response.status_code == 400 and "error" in response.json()


def test_a_flood_of_unknown_models_does_not_query_the_database_per_request(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(sqlite_url, reconcile_interval_s=3600)
    reads: list[str] = []

    def count(conn, cursor, statement: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        if "FROM alias" in statement or "FROM adapter_version" in statement:
            reads.append(statement)

    db = gateway.app.state.db  # type: ignore[attr-defined]
    event.listen(db, "before_cursor_execute", count)
    started = time.monotonic()
    for i in range(300):
        model = f"nope-{i}" if i % 2 else f"nope-{i}@{i}"
        error(gateway.post(CHAT, json={"model": model, "messages": HI}), 404, "does not exist")
    seconds = time.monotonic() - started
    event.remove(db, "before_cursor_execute", count)
    refreshes = len(reads) / 2  # one refresh reads both tables
    assert refreshes <= 1 + seconds, f"{refreshes} refreshes for 300 requests in {seconds:.1f} s"


def test_each_key_is_rate_limited_on_its_own(
    sqlite_url: str, make_gateway: Callable[..., TestClient]
) -> None:
    from serve.auth import create_key

    gateway = make_gateway(sqlite_url, require_keys=True, rate_limit_per_s=2.0, rate_limit_burst=3)
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        one, other = ({"Authorization": f"Bearer {create_key(session, 'client', n)}"} for n in "ab")
    body = {"model": "base", "messages": HI}
    assert [gateway.post(CHAT, json=body, headers=one).status_code for _ in range(3)] == [200] * 3
    refused = gateway.post(CHAT, json=body, headers=one)
    error(refused, 429, "rate limit of 2 requests/s")
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.headers["Retry-After"] == "1"
    assert gateway.post(CHAT, json=body, headers=other).status_code == 200, "a key of its own"
    time.sleep(0.6)  # one token back at 2/s
    assert gateway.post(CHAT, json=body, headers=one).status_code == 200
