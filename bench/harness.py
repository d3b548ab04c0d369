"""Boots the real platform (`loraloop run`: vLLM engine + gateway) for benchmarks, and
drives concurrent load against it."""

import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from retrain.train import TrainResult

REPO = Path(__file__).resolve().parent.parent
LORALOOP = str(Path(sys.executable).parent / "loraloop")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Settings overrides given as `key=json` on a bench's command line."""
    out: dict[str, Any] = {}
    for pair in filter(None, pairs):
        key, _, value = pair.partition("=")
        out[key] = json.loads(value)
    return out


def run_record(result: "TrainResult") -> dict[str, Any]:
    """A training run as the benches report it: its length, where its best step fell, what
    ended it and the validation curve (and a preference stage's metrics)."""
    return {
        "steps": result.steps,
        "best_step": result.best_step,
        "rule": result.stop_rule,
        "stop": result.stop_reason,
        "seconds": round(result.seconds),
        "validation": result.validation,
        **({"preference": result.preference} if result.preference else {}),
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_model(d: Path) -> Path:
    """A model directory the fake engine (tests/fake_engine.py) accepts: it reads no weights."""
    model = d / "model"
    model.mkdir()
    for name, text in (("config.json", "{}"), ("tokenizer.json", "{}"), ("model.safetensors", "")):
        (model / name).write_text(text)
    return model


def fake_adapter(store: Path, name: str) -> Path:
    """A directory shaped like a peft adapter, its weights file unique to `name`."""
    path = store / name
    path.mkdir(parents=True)
    config = {"r": 8, "lora_alpha": 16, "base_model_name_or_path": "base",
              "target_modules": ["q_proj"], "peft_type": "LORA"}  # fmt: skip
    (path / "adapter_config.json").write_text(json.dumps(config))
    (path / "adapter_model.safetensors").write_bytes(name.encode())
    return path


def fake_gateway_env(d: Path, store: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `loraloop run` in open mode over the fake engine, everything it
    writes under `d`, its database SQLite there: what measures the gateway's own share."""
    return {
        **os.environ,
        "LORALOOP_DB_URL": f"sqlite:///{d / 'bench.db'}",
        "LORALOOP_SERVE_PORT": str(port),
        "LORALOOP_ENGINE_PORT": str(free_port()),
        "LORALOOP_ENGINE_ENTRYPOINT": "tests.fake_engine",
        "LORALOOP_ENGINE_LOG_DIR": str(d / "logs"),
        "LORALOOP_MODEL_PATH": str(fake_model(d)),
        "LORALOOP_MODEL_NAME": "base",
        "LORALOOP_SERVE_ADAPTER_STORE": str(store),
        "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(d / "spool.jsonl"),
        "PYTHONPATH": str(REPO),
        "LORALOOP_SERVE_REQUIRE_KEYS": "false",
        "LORALOOP_ENGINE_API_KEY_FILE": str(d / "engine.key"),
        **extra,
    }


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 600) -> None:
    """Until `url/health` answers 200; the log's tail if the process exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(log.read_text()[-3000:])
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not come up in {seconds:.0f} s")


@dataclass
class Running:
    gateway: str
    engine: str
    model: str
    adapter_store: Path
    db_url: str
    engine_key: str


@contextmanager
def platform(**extra: str) -> Iterator[Running]:
    """`loraloop run` on the real engine, `extra` added to its environment."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gw, en = free_port(), free_port()
        key = secrets.token_urlsafe(24)
        env = {**os.environ, "LORALOOP_DB_URL": f"sqlite:///{d / 'bench.db'}",
               "LORALOOP_SERVE_PORT": str(gw), "LORALOOP_ENGINE_PORT": str(en),
               "LORALOOP_ENGINE_LOG_DIR": str(d / "logs"),
               "LORALOOP_SERVE_ADAPTER_STORE": str(d / "adapters"),
               "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
               "LORALOOP_SERVE_RECONCILE_INTERVAL_S": "1",
               "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(d / "spool.jsonl"),
               "LORALOOP_SERVE_REQUIRE_KEYS": "false", "LORALOOP_ENGINE_API_KEY": key,
               **extra}  # fmt: skip
        (d / "adapters").mkdir()
        subprocess.run(
            [LORALOOP, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=REPO
        )
        log = (d / "run.log").open("wb")
        proc = subprocess.Popen(
            [LORALOOP, "run"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        try:
            wait_healthy(f"http://127.0.0.1:{gw}", proc, d / "run.log")
            model = httpx.get(
                f"http://127.0.0.1:{en}/v1/models", headers={"Authorization": f"Bearer {key}"}
            ).json()["data"][0]["id"]
            yield Running(
                f"http://127.0.0.1:{gw}",
                f"http://127.0.0.1:{en}",
                model,
                d / "adapters",
                env["LORALOOP_DB_URL"],
                key,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float]
    tokens: int
    failures: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000


async def load(
    base: str, model: str, prompts: list[str], concurrency: int, max_tokens: int
) -> LoadResult:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in prompts:
        queue.put_nowait(p)
    latencies: list[float] = []
    tokens = failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal tokens, failures
        while not queue.empty():
            prompt = queue.get_nowait()
            t0 = time.perf_counter()
            r = await client.post(
                f"{base}/v1/chat/completions",
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens,
                    "temperature": 0,
                    "ignore_eos": True,
                },
            )
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                failures += 1
                continue
            tokens += r.json()["usage"]["completion_tokens"]

    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return LoadResult(seconds, latencies, tokens, failures)
