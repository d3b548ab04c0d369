"""The engine manager: a supervised vLLM OpenAI server, or external ones.

The gateway never talks to vLLM through Python objects, only over its HTTP API, so
the same code serves the embedded default (one child process started here) and
production (replicas started elsewhere and named in settings). The child runs in
its own process group: vLLM forks an engine-core process, and stopping the group
is the only way to leave no orphans behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from pydantic import SecretStr

from serve.chat_template import ChatTemplateError, resolve_chat_template
from serve.hardware import LoraSlots, device_memory, lora_slots, resolve_dtype, vllm_platform
from serve.model_store import check_model_dir
from serve.settings import EngineSettings, TracingSettings

STORE_PLUGIN = "loraloop_adapter_store"  # serve/store/plugin.py, an endpoint plugin

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30


class EngineError(RuntimeError):
    """The engine could not be started or kept running; the message says why."""


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (host, port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no engine log written)"
    return "\n".join(text.splitlines()[-lines:])


class EngineManager:
    """Starts, watches, restarts and stops the engine; or points at external ones.

    Hooks added with `on_ready` run after every successful (re)start, so that state
    the engine loses when it dies (runtime-loaded LoRA adapters) can be restored.
    """

    def __init__(
        self,
        settings: EngineSettings,
        model_dir: Path,
        served_model_name: str,
        tracing: TracingSettings | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing or TracingSettings()
        self.model_dir = model_dir
        self.served_model_name = served_model_name
        self.restarts = 0
        self.state = "stopped"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._ready_hooks: list[Callable[[EngineManager], None]] = []
        self._log_path = settings.log_dir / f"engine-{settings.port}.log"

    @property
    def external(self) -> bool:
        return bool(self.settings.urls)

    @property
    def urls(self) -> list[str]:
        """Base URLs (without /v1) of every engine replica."""
        if self.external:
            return list(self.settings.urls)
        return [f"http://{self.settings.host}:{self.settings.port}"]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self._log_path

    def on_ready(self, hook: Callable[[EngineManager], None]) -> None:
        self._ready_hooks.append(hook)

    def command(self) -> list[str]:
        """The api_server command line built from settings."""
        s = self.settings
        cmd = [
            sys.executable,
            "-m",
            s.entrypoint,
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.served_model_name,
            "--host",
            s.host,
            "--port",
            str(s.port),
            "--dtype",
            resolve_dtype(s.dtype),
            "--max-model-len",
            str(s.max_model_len),
            "--gpu-memory-utilization",
            str(s.gpu_memory_utilization),
            "--enable-lora",
            "--max-lora-rank",
            str(s.max_lora_rank),
        ]
        slots = self.lora_slots()
        cmd += ["--max-loras", str(s.max_loras or slots.gpu)]
        cmd += ["--max-cpu-loras", str(s.max_cpu_loras or max(slots.cpu, s.max_loras or 0))]
        if s.tool_call_parser:
            cmd += ["--enable-auto-tool-choice", "--tool-call-parser", s.tool_call_parser]
            cmd += ["--tool-strict-level", s.tool_strict_level]
        try:
            template = resolve_chat_template(s.chat_template, self.model_dir)
        except ChatTemplateError as exc:
            raise EngineError(str(exc)) from None
        if template is not None:
            cmd += ["--chat-template", str(template)]
        if endpoint := self.tracing.traces_endpoint:  # vLLM's own spans, under the gateway's
            cmd += ["--otlp-traces-endpoint", endpoint]
        return cmd + s.extra_args

    def lora_slots(self) -> LoraSlots:
        """Adapter slots chosen from the model's shape and this machine (settings that are
        set win); a model directory without a readable config gets the old fixed 4."""
        s = self.settings
        dtype = resolve_dtype(s.dtype)
        try:
            config = json.loads((self.model_dir / "config.json").read_text())
            device = device_memory() if vllm_platform() == "cuda" else None
            return lora_slots(
                config,
                s.max_lora_rank,
                4 if dtype == "float32" else 2,
                device,
                psutil.virtual_memory().total,
                s.gpu_memory_utilization,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return LoraSlots(4, 4, 0, f"4 slots: the model's config was not readable ({exc})")

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        plugins = [p for p in env.get("VLLM_PLUGINS", "").split(",") if p and p != STORE_PLUGIN]
        env["VLLM_PLUGINS"] = ",".join([*plugins, STORE_PLUGIN])  # loads from object storage
        if self.settings.api_key is not None:  # in the environment: not on `ps` output
            env["VLLM_API_KEY"] = self.settings.api_key.get_secret_value()
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.settings.kv_cache_space_gib))
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.tracing.traces_endpoint:
            env.setdefault("OTEL_SERVICE_NAME", self.tracing.service_name or "loraloop-engine")
            env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = self.tracing.exporter_otlp_protocol
        return env

    def start(self) -> None:
        """Start (or, with external URLs, check) the engine; raise EngineError if it fails."""
        if self.external:
            # Replicas run elsewhere and come and go: the gateway's replica pool watches
            # them, and one that is down at start is reported, never fatal.
            for url in self.urls:
                if not _healthy(f"{url}/health"):
                    log.warning("external engine %s does not answer /health yet", url)
            self.state = "ready"
            self._run_ready_hooks()
            return
        check_model_dir(self.model_dir)
        s = self.settings
        if s.api_key is None:
            self._new_key()
        if port_in_use(s.host, s.port):
            raise EngineError(
                f"engine port {s.port} on {s.host} is already in use: stop what listens there "
                "or set LORALOOP_ENGINE_PORT to a free port"
            )
        log.info("starting vLLM (%s) for %s on port %s", vllm_platform(), self.model_dir, s.port)
        if s.max_loras is None or s.max_cpu_loras is None:
            log.info("adapter slots: %s", self.lora_slots().reason)
        self._stopping.clear()
        self._spawn_and_wait()
        self._run_ready_hooks()
        if s.restart:
            self._supervisor = threading.Thread(
                target=self._supervise, name="engine-supervisor", daemon=True
            )
            self._supervisor.start()

    def _new_key(self) -> None:
        """No key configured: a random one for this engine, kept in the key file (0600) so
        this machine's other loraloop commands (retraining, the CLI) can reach it."""
        key = secrets.token_urlsafe(32)
        path = self.settings.api_key_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
        self.settings.api_key = SecretStr(key)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the engine and every process it started."""
        self._stopping.set()
        self._terminate(timeout)
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout)
        self.state = "stopped"

    def status(self) -> dict[str, object]:
        return {
            "state": self.state,
            "urls": self.urls,
            "external": self.external,
            "pid": self.pid,
            "restarts": self.restarts,
            "model": self.served_model_name,
        }

    def _spawn_and_wait(self) -> None:
        self.state = "starting"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as logfile:
            logfile.write(f"\n--- engine start {time.strftime('%F %T')} ---\n".encode())
            logfile.flush()
            self._proc = subprocess.Popen(
                self.command(),
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
            )
        try:
            self._wait_local(time.monotonic() + self.settings.startup_timeout_s)
        except EngineError:
            self._terminate(10)
            self.state = "failed"
            raise
        self.state = "ready"
        log.info("engine ready at %s (pid %s)", self.urls[0], self._proc.pid)

    def _wait_local(self, deadline: float) -> None:
        assert self._proc is not None
        url = f"{self.urls[0]}/health"
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                raise EngineError("engine start interrupted by shutdown")
            code = self._proc.poll()
            if code is not None:
                raise EngineError(
                    f"engine exited with code {code} during startup; last lines of "
                    f"{self._log_path}:\n{tail(self._log_path)}"
                )
            if _healthy(url):
                return
            time.sleep(0.1)
        raise EngineError(
            f"engine not healthy after {self.settings.startup_timeout_s:.0f} s "
            f"(LORALOOP_ENGINE_STARTUP_TIMEOUT_S); last lines of {self._log_path}:\n"
            f"{tail(self._log_path)}"
        )

    def _supervise(self) -> None:
        """Restart the engine when it dies, up to max_restarts times."""
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None or proc.poll() is None:
                self._stopping.wait(1.0)
                continue
            log.error(
                "engine exited with code %s; last lines:\n%s", proc.returncode, tail(self._log_path)
            )
            self._reap_dead(proc)
            if self.restarts >= self.settings.max_restarts:
                self.state = "failed"
                log.error("engine restarted %s times already; giving up", self.restarts)
                return
            self.restarts += 1
            try:
                self._spawn_and_wait()
            except EngineError as exc:
                log.error("engine restart failed: %s", exc)
                continue
            self._run_ready_hooks()

    def _run_ready_hooks(self) -> None:
        for hook in self._ready_hooks:
            try:
                hook(self)
            except Exception:
                log.exception("engine ready hook %r failed", hook)

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        family = _descendants(proc.pid)
        _signal_all(proc.pid, family, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("engine did not stop in %.0f s; killing it", timeout)
        alive = _wait_gone(family, timeout=5)
        _signal_all(proc.pid, alive, signal.SIGKILL)
        proc.wait()
        _wait_gone(alive, timeout=5)

    def _reap_dead(self, proc: subprocess.Popen[bytes]) -> None:
        """After the engine died on its own: kill what is left of its group."""
        _signal_all(proc.pid, [], signal.SIGKILL)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still running after at most `timeout` s. A zombie counts as gone:
    it has exited, and reaping it is init's job, which some inits do only every second or
    so (psutil.wait_procs waits for the reaping)."""
    deadline = time.monotonic() + timeout
    while True:
        procs = [p for p in procs if _running(p)]
        if not procs or time.monotonic() >= deadline:
            return procs
        time.sleep(0.02)


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_all(pgid: int, procs: list[psutil.Process], sig: int) -> None:
    """Signal the engine's process group and any descendant that left it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(sig)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
