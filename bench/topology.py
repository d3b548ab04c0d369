"""The production topology on this machine (issue 10): real vLLM engine replicas started with
`loraloop engine`, gateways with `loraloop run`, nginx with docker/nginx.conf.

1. throughput: the same load through a gateway on one engine and a gateway on two, in
   alternating rounds, as a ratio (two/one);
2. failover window: under load through the two-engine gateway, one engine's vLLM is killed;
   seconds until the gateway's /health shows it out of rotation, and failed requests;
3. rolling restart: two gateways behind nginx restarted one after the other under load;
   requests lost (goal 0).

    .venv/bin/python bench/topology.py [--rounds 2]
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
from harness import REPO, free_port, load
from sqlalchemy import create_engine
from sqlmodel import Session

from serve.auth import create_key
from serve.settings import ModelSettings

sys.path.insert(0, str(REPO))
from tests.utils.load import Load, failed
from tests.utils.nginx import Nginx
from tests.utils.processes import ENGINE_KEY, Child, healthy
from tests.utils.replicas import replica_up, wait_until

PROMPTS = [f"Write one sentence about the number {k}." for k in range(48)]
BODY = {"model": "", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--only", nargs="+", choices=["throughput", "failover", "rolling"], help="parts to run"
    )
    args = parser.parse_args()
    model_dir = ModelSettings().model_dir().resolve()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        env = {
            **os.environ,
            "LORALOOP_DB_URL": f"sqlite:///{d / 'bench.db'}",
            "LORALOOP_MODEL_PATH": str(model_dir),
            "LORALOOP_SERVE_ADAPTER_STORE": str(d / "adapters"),
            "LORALOOP_SERVE_TEMPLATES_DIR": str(REPO / "prompt_templates"),
            "LORALOOP_ENGINE_LOG_DIR": str(d / "logs"),
            "LORALOOP_WORKER_IN_GATEWAY": "false",
            "LORALOOP_SERVE_REPLICA_CHECK_INTERVAL_S": "1",
            "LORALOOP_SERVE_REQUIRE_KEYS": "false",  # direct calls from here need no key...
            "LORALOOP_SERVE_RATE_LIMIT_PER_S": "0",  # ...the one through nginx does, unlimited
            "LORALOOP_ENGINE_API_KEY": ENGINE_KEY,
            "PYTHONUNBUFFERED": "1",
        }
        (d / "adapters").mkdir()
        Child(["db", "upgrade"], env, d / "migrate.log").proc.wait()
        children: list[Child] = []
        try:
            ports = [free_port(), free_port()]
            engines = [
                Child(["engine"], {**env, "LORALOOP_ENGINE_PORT": str(p)}, d / f"e{p}.log")
                for p in ports
            ]
            children += engines
            for e in engines:
                wait_until(lambda e=e: "ready on" in e.output(), 900, "engine")
            urls = [f"http://127.0.0.1:{p}" for p in ports]

            def gateway(engine_urls: list[str], port: int, tag: str) -> Child:
                child = Child(
                    ["run"],
                    {
                        **env,
                        "LORALOOP_SERVE_PORT": str(port),
                        "LORALOOP_ENGINE_URLS": json.dumps(engine_urls),
                    },
                    d / f"g{port}-{tag}.log",
                )
                wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), 300, "gateway")
                children.append(child)
                return child

            one_port, two_port = free_port(), free_port()
            gateway(urls[:1], one_port, "one")
            two = gateway(urls, two_port, "two")
            one_url, two_url = f"http://127.0.0.1:{one_port}", f"http://127.0.0.1:{two_port}"
            if not args.only or "throughput" in args.only:
                throughput(one_url, two_url, model_dir.name, args.rounds)
            if not args.only or "failover" in args.only:
                failover(two_url, engines[1], urls[1], model_dir.name)
                wait_until(lambda: replica_up(two_url, urls[1]), 900, "engine back")
            two.terminate()
            if not args.only or "rolling" in args.only:
                rolling_restart(gateway, urls, model_dir.name, d)
        finally:
            for child in children:
                if child.proc.poll() is None:
                    child.terminate(120)


def throughput(one: str, two: str, model: str, rounds: int) -> None:
    ratios = []
    for r in range(rounds):
        a = asyncio.run(load(one, model, PROMPTS, 16, 32))
        b = asyncio.run(load(two, model, PROMPTS, 16, 32))
        ratios.append(b.tokens_per_s / a.tokens_per_s)
        print(
            f"round {r + 1}: one engine {a.tokens_per_s:.1f} tok/s, two engines "
            f"{b.tokens_per_s:.1f} tok/s, ratio {ratios[-1]:.3f} "
            f"(failures {a.failures}/{b.failures})"
        )
    print(f"throughput two/one engines: median ratio {statistics.median(ratios):.3f}")


def failover(gateway: str, engine: Child, engine_url: str, model: str) -> None:
    body = {**BODY, "model": model}
    traffic = Load([gateway], body, clients=4, max_requests=10_000, max_seconds=60).start()
    time.sleep(5)
    vllm = psutil.Process(engine.proc.pid).children()[0]
    os.killpg(vllm.pid, signal.SIGKILL)
    killed = time.monotonic()
    out_after = wait_until(lambda: not replica_up(gateway, engine_url), 30, "out of rotation")
    time.sleep(10)
    outcomes = traffic.stop()
    lost = failed(outcomes, killed)
    window = max((o.at - killed for o in lost), default=0.0)
    print(
        f"failover: out of rotation {out_after:.2f} s after the kill; "
        f"{len(outcomes)} requests, {len(lost)} failed after the kill, "
        f"last failure {window:.2f} s after it"
    )


def rolling_restart(gateway, engine_urls: list[str], model: str, d: Path) -> None:  # type: ignore[no-untyped-def]
    ports = [free_port(), free_port()]
    gateways = [gateway(engine_urls, p, "rr0") for p in ports]
    lb = Nginx([f"127.0.0.1:{p}" for p in ports], free_port(), d)
    engine = create_engine(f"sqlite:///{d / 'bench.db'}")
    with Session(engine) as session:  # open mode does not trust what nginx relays: a key
        key = {"Authorization": f"Bearer {create_key(session, 'client', 'bench')}"}
    engine.dispose()
    try:
        body = {**BODY, "model": model}
        traffic = Load(
            [lb.url], body, clients=4, max_requests=100_000, max_seconds=300, headers=key
        ).start()
        time.sleep(3)
        for k, port in enumerate(ports):
            gateways[k].terminate(120)
            gateways[k] = gateway(engine_urls, port, "rr1")
            time.sleep(3)
        outcomes = traffic.stop()
        lost = failed(outcomes)
        print(
            f"rolling restart of 2 gateways behind nginx: {len(outcomes)} requests, "
            f"{len(lost)} failed {Counter(o.status for o in lost)}"
        )
        for o in lost[:3]:
            print(f"  {o.status} {o.error}")
        if lost:
            import shutil

            shutil.copytree(d, "/tmp/bench-topology-logs", dirs_exist_ok=True)
            for log in sorted(d.glob("g*-rr*.log")):
                text = log.read_text(errors="replace")
                if "Traceback" in text:
                    end = text.index("Traceback") + text[text.index("Traceback") :].find("\n\n")
                    print(f"--- {log.name}\n{text[max(0, end - 2500) : end]}")
    finally:
        lb.stop()
        for g in gateways:
            if g.proc.poll() is None:
                g.terminate(120)


if __name__ == "__main__":
    main()
