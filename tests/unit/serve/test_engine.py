"""Engine manager: lifecycle and failure paths, against the fake engine (fast)."""

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from serve.chat_template import CHATML_TOOLS
from serve.engine import EngineError, EngineManager
from serve.model_store import ModelError
from serve.settings import EngineSettings

FAKE = "tests.fake_engine"
CHATML_NO_TOOLS = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"


@pytest.fixture
def make_manager(
    tmp_path: Path, fake_model_dir: Path, port: int
) -> Iterator[Callable[..., EngineManager]]:
    managers: list[EngineManager] = []

    def make(model_dir: Path | None = None, **overrides: object) -> EngineManager:
        options: dict[str, object] = {
            "entrypoint": FAKE,
            "port": port,
            "log_dir": tmp_path / "logs",
            "startup_timeout_s": 30,
        }
        settings = EngineSettings(**{**options, **overrides})  # type: ignore[arg-type]
        manager = EngineManager(settings, model_dir or fake_model_dir, "base")
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.stop(timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def alive(procs: list[psutil.Process]) -> list[int]:
    return [p.pid for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_start_then_stop_leaves_no_orphans(make_manager: Callable[..., EngineManager]) -> None:
    manager = make_manager()
    manager.start()
    assert manager.state == "ready"
    assert manager.pid is not None
    family = [psutil.Process(manager.pid), *psutil.Process(manager.pid).children(recursive=True)]
    assert len(family) >= 2, "the fake engine forks an engine-core child"

    manager.stop()

    assert manager.state == "stopped"
    assert alive(family) == []


def test_command_carries_engine_settings(make_manager: Callable[..., EngineManager]) -> None:
    manager = make_manager(max_loras=3, max_lora_rank=32, max_model_len=1024, dtype="float16")
    cmd = manager.command()
    for flag, value in [
        ("--max-loras", "3"),
        ("--max-lora-rank", "32"),
        ("--max-model-len", "1024"),
        ("--dtype", "float16"),
    ]:
        assert cmd[cmd.index(flag) + 1] == value
    assert "--enable-lora" in cmd
    assert manager.environment()["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


def test_the_store_plugin_is_allowlisted_beside_the_operators_own(
    make_manager: Callable[..., EngineManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM loads route-adding plugins only when VLLM_PLUGINS names them; naming ours must
    keep the plugins an operator listed, and the entry point must resolve to the plugin."""
    from importlib.metadata import entry_points

    monkeypatch.setenv("VLLM_PLUGINS", "their_plugin")
    plugins = make_manager().environment()["VLLM_PLUGINS"].split(",")
    assert plugins == ["their_plugin", "loraloop_adapter_store"]
    (found,) = [e for e in entry_points(group="vllm.endpoint_plugins") if e.name == plugins[1]]
    assert found.load()().name == plugins[1]


def test_tool_calling_is_on_with_the_shipped_template_for_a_chatml_model_without_tools(
    make_manager: Callable[..., EngineManager], fake_model_dir: Path
) -> None:
    (fake_model_dir / "chat_template.jinja").write_text(CHATML_NO_TOOLS)
    cmd = make_manager().command()
    assert cmd[cmd.index("--tool-call-parser") + 1] == "hermes"
    assert cmd[cmd.index("--tool-strict-level") + 1] == "parameter"
    assert "--enable-auto-tool-choice" in cmd
    assert Path(cmd[cmd.index("--chat-template") + 1]) == CHATML_TOOLS

    (fake_model_dir / "chat_template.jinja").write_text(CHATML_NO_TOOLS + "{{ tools }}")
    assert "--chat-template" not in make_manager().command(), "a template with tools is kept"
    off = make_manager(tool_call_parser="", chat_template="model").command()
    assert "--enable-auto-tool-choice" not in off and "--chat-template" not in off


def test_an_unknown_chat_template_is_a_clear_engine_error(
    make_manager: Callable[..., EngineManager],
) -> None:
    expected = r"'no-such'.*chatml_tools.*LORALOOP_ENGINE_CHAT_TEMPLATE"
    with pytest.raises(EngineError, match=expected):
        make_manager(chat_template="no-such").command()


def test_missing_model_dir_names_path_and_pull_command(
    make_manager: Callable[..., EngineManager], tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelError) as info:
        make_manager(model_dir=missing).start()
    assert str(missing) in str(info.value)
    assert "loraloop models pull" in str(info.value)


def test_corrupt_model_dir_is_refused(
    make_manager: Callable[..., EngineManager], fake_model_dir: Path
) -> None:
    (fake_model_dir / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"config\.json"):
        make_manager().start()


def test_engine_that_exits_at_start_reports_its_log(
    make_manager: Callable[..., EngineManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ENGINE_MODE", "crash")
    manager = make_manager()
    with pytest.raises(EngineError) as info:
        manager.start()
    message = str(info.value)
    assert "exited with code 3" in message
    assert "fake engine could not load the model" in message
    assert manager.state == "failed"


def test_engine_that_never_gets_healthy_times_out_and_is_killed(
    make_manager: Callable[..., EngineManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ENGINE_MODE", "hang")
    manager = make_manager(startup_timeout_s=3)
    with pytest.raises(EngineError, match="not healthy after 3 s"):
        manager.start()
    assert manager.pid is not None
    assert not psutil.pid_exists(manager.pid) or (
        psutil.Process(manager.pid).status() == psutil.STATUS_ZOMBIE
    )


def test_port_already_in_use(make_manager: Callable[..., EngineManager], port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        with pytest.raises(EngineError, match=f"port {port} .* already in use"):
            make_manager().start()


def test_engine_that_dies_is_restarted_and_hooks_rerun(
    make_manager: Callable[..., EngineManager],
) -> None:
    manager = make_manager()
    ready_calls: list[int | None] = []
    manager.on_ready(lambda m: ready_calls.append(m.pid))
    manager.start()
    first_pid = manager.pid
    assert first_pid is not None

    os.kill(first_pid, signal.SIGKILL)

    wait_for(lambda: manager.restarts == 1 and manager.state == "ready")
    assert manager.pid != first_pid
    assert ready_calls == [first_pid, manager.pid]


def test_gives_up_after_max_restarts(
    make_manager: Callable[..., EngineManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = make_manager(max_restarts=1)
    manager.start()
    monkeypatch.setenv("FAKE_ENGINE_MODE", "crash")  # every restart now fails
    assert manager.pid is not None
    os.kill(manager.pid, signal.SIGKILL)
    wait_for(lambda: manager.state == "failed")
    assert manager.restarts == 1


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_external_engines_start_nothing(make_manager: Callable[..., EngineManager]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        manager = make_manager(urls=[url], startup_timeout_s=5)
        manager.start()
        assert manager.external
        assert manager.state == "ready"
        assert manager.pid is None
        assert manager.urls == [url.rstrip("/")]
    finally:
        server.shutdown()


def test_unreachable_external_engine_is_not_fatal(
    make_manager: Callable[..., EngineManager], caplog: pytest.LogCaptureFixture
) -> None:
    """Replicas come and go: the gateway's replica pool reports them; start never hangs."""
    manager = make_manager(urls=["http://127.0.0.1:9"], startup_timeout_s=1)
    manager.start()
    assert manager.state == "ready"
    assert "http://127.0.0.1:9 does not answer /health yet" in caplog.text
