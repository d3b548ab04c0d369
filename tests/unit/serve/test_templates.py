"""Prompt templates: rendering, variable checks, versioning at sync, use in requests."""

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from feedback.models import Interaction
from loraloop import db
from serve.template_releases import TemplateReleases
from serve.templates import (
    TemplateSpec,
    TemplateSpecError,
    TemplateStore,
    VariableError,
    load_spec,
    sync_templates,
)
from tests.utils import REPO

TEMPLATES = REPO / "prompt_templates"


def test_shipped_templates_are_valid() -> None:
    names = {load_spec(p).name for p in TEMPLATES.glob("*.yaml")}
    assert {"support-agent", "summarizer", "ticket-classifier"} <= names


def test_render_puts_system_examples_then_messages() -> None:
    spec = load_spec(TEMPLATES / "support-agent.yaml")
    messages = TemplateStore().render(
        spec,
        {"customer_name": "Ana", "max_sentences": 2},
        [{"role": "user", "content": "My invoice is wrong"}],
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "You help Ana" in messages[0]["content"]
    assert "at most 2 sentences" in messages[0]["content"]
    assert messages[-1]["content"] == "My invoice is wrong"


def test_variable_problems_are_all_named() -> None:
    spec = load_spec(TEMPLATES / "support-agent.yaml")
    with pytest.raises(VariableError) as info:
        TemplateStore().render(spec, {"max_sentences": "three", "mood": "x"}, [])
    problems = " ".join(info.value.problems)
    assert "'customer_name' is required" in problems
    assert "'max_sentences' must be integer, got str" in problems
    assert "'mood' is not declared" in problems


def test_sandbox_blocks_python_internals() -> None:
    spec = TemplateSpec(name="evil", system="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(VariableError, match="template error"):
        TemplateStore().render(spec, {}, [])


def test_invalid_file_names_itself(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Not Valid Name\nsystem: hi\n")
    with pytest.raises(TemplateSpecError, match=r"bad\.yaml"):
        load_spec(bad)


def test_changed_file_becomes_new_version_old_stays(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    db.upgrade(url)
    directory = tmp_path / "templates"
    directory.mkdir()
    shutil.copy(TEMPLATES / "summarizer.yaml", directory)
    engine = db.create_db_engine(url)
    store = TemplateStore()
    with Session(engine) as session:
        assert [r.version for r in sync_templates(session, directory)] == [1]
        assert sync_templates(session, directory) == [], "unchanged file: no new version"
        path = directory / "summarizer.yaml"
        path.write_text(path.read_text().replace("three lines", "four lines"))
        assert [r.version for r in sync_templates(session, directory)] == [2]
        latest = store.get(session, "summarizer")
        first = store.get(session, "summarizer", 1)
        assert latest is not None and first is not None
        assert "four lines" in latest[1].output_format
        assert "three lines" in first[1].output_format
    engine.dispose()


def test_a_changed_file_deploys_even_where_a_release_pins_production(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    db.upgrade(url)
    directory = tmp_path / "templates"
    directory.mkdir()
    shutil.copy(TEMPLATES / "summarizer.yaml", directory)
    engine = db.create_db_engine(url)
    releases = TemplateReleases()
    with Session(engine) as session:
        sync_templates(session, directory)
        spec = TemplateSpec.model_validate(releases.version(session, "summarizer", 1).spec)
        made = releases.add_version(session, spec.model_copy(update={"system": "x"}), "retrain")
        assert made.version == 2 and releases.production(session, "summarizer") == 1
        assert sync_templates(session, directory) == [], "the file did not change"
        path = directory / "summarizer.yaml"
        path.write_text(path.read_text().replace("three lines", "four lines"))
        assert [r.version for r in sync_templates(session, directory)] == [3]
        assert releases.production(session, "summarizer") == 3
    engine.dispose()


def test_request_with_template_is_rendered_and_captured(gateway: TestClient) -> None:
    response = gateway.post(
        "/v1/chat/completions",
        json={
            "model": "base",
            "template": "support-agent",
            "variables": {"customer_name": "Ana"},
            "messages": [{"role": "user", "content": "Where is my invoice?"}],
        },
    )
    assert response.status_code == 200, response.text
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]

    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        record = session.get(Interaction, response.json()["interaction_id"])
    assert record is not None
    assert record.template == "support-agent"
    assert record.template_version == 1
    assert record.rendered_messages is not None
    assert "You help Ana" in record.rendered_messages[0]["content"]
    assert "template" in record.request


def test_template_errors_are_422_naming_variables(gateway: TestClient) -> None:
    response = gateway.post(
        "/v1/chat/completions",
        json={
            "model": "base",
            "template": "support-agent",
            "variables": {"max_sentences": "x"},
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "customer_name" in message and "max_sentences" in message
    missing = gateway.post(
        "/v1/chat/completions",
        json={"model": "base", "template": "nope", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert missing.status_code == 404
    old = gateway.post(
        "/v1/chat/completions",
        json={
            "model": "base",
            "template": "summarizer",
            "template_version": 7,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert old.status_code == 404
    assert "version 7" in old.json()["error"]["message"]


def test_template_default_alias_is_used_without_model(gateway: TestClient) -> None:
    response = gateway.post(
        "/v1/chat/completions",
        json={
            "template": "support-agent",
            "variables": {"customer_name": "Ana"},
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.status_code == 404, "its default alias `support` has no version yet"
    assert "support" in response.json()["error"]["message"]


def test_templates_endpoint_lists_versions(gateway: TestClient) -> None:
    data = gateway.get("/v1/templates").json()["data"]
    by_name = {t["name"]: t for t in data}
    assert by_name["support-agent"]["latest"] is True
    assert by_name["support-agent"]["variables"]["customer_name"]["required"] is True
    assert by_name["support-agent"]["default_alias"] == "support"


def test_a_template_declares_the_tools_its_agent_may_call(gateway: TestClient) -> None:
    """Sent with the request when it names none; a request's own tools must be among
    them (422 naming the others); `/v1/templates` lists them by name."""
    ask = {
        "model": "base",
        "template": "order-agent",
        "messages": [{"role": "user", "content": "Where is order A-1042?"}],
    }
    response = gateway.post("/v1/chat/completions", json=ask)
    assert response.status_code == 200, response.text
    call = response.json()["choices"][0]["message"]["tool_calls"][0]
    declared = ["lookup_order", "refund_order", "cancel_order"]
    assert json.loads(call["function"]["arguments"]) == {"seen": declared}
    gateway.app.state.capture.flush()  # type: ignore[attr-defined]
    with Session(gateway.app.state.db) as session:  # type: ignore[attr-defined]
        record = session.get(Interaction, response.json()["interaction_id"])
    assert record is not None and "tools" not in record.request
    assert [t["function"]["name"] for t in record.tools or []] == declared, "what the model saw"
    assert record.tool_calls and record.tool_calls[0]["function"]["name"] == "lookup_order"

    spec = load_spec(TEMPLATES / "order-agent.yaml")
    own = [spec.tools[0].model_dump(exclude_none=True)]
    narrowed = gateway.post("/v1/chat/completions", json={**ask, "tools": own})
    seen = narrowed.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(seen) == {"seen": ["lookup_order"]}

    other = {"type": "function", "function": {"name": "delete_account", "parameters": {}}}
    refused = gateway.post("/v1/chat/completions", json={**ask, "tools": [*own, other]})
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "tools"
    assert "'delete_account' is not declared by template 'order-agent'" in refused.text

    cards = {t["name"]: t for t in gateway.get("/v1/templates").json()["data"]}
    assert cards["order-agent"]["tools"] == declared
    assert cards["support-agent"]["tools"] == []


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        ({"function": {"name": "has space"}}, "pattern"),
        ({"function": {"name": "f", "parameters": {"type": "objekt"}}}, "not a JSON schema"),
        ({"type": "retrieval", "function": {"name": "f"}}, "function"),
    ],
)
def test_an_invalid_tool_in_a_template_file_names_the_file(
    tmp_path: Path, tool: dict[str, object], problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "bad", "tools": [tool]}))
    with pytest.raises(TemplateSpecError, match=rf"(?s)bad\.yaml.*{problem}"):
        load_spec(path)
