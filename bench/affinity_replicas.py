"""Two real engine replicas, with affinity routing and without (issue 25).

Two vLLM engines (`loraloop engine`, each keeping only `--warm` adapters in host memory so
that the working set matters) behind one gateway; 64 adapters, each its own alias,
registered and promoted through the admin API; 4 clients send Zipf-distributed (s = 1.1)
requests. Two modes, fresh engines each:
- affinity: an alias's versions live on one home replica (`LORALOOP_SERVE_ADAPTER_REPLICAS=1`),
  requests go there (consistent hashing with bounded loads);
- everywhere: every replica loads every adapter and requests go to the least busy one (the
  vLLM production-stack rule, `LORALOOP_SERVE_ROUTING=least_busy`, adapter replicas 0).
Measured: throughput and p50/p95 latency (ratio to `everywhere`), the gateway's loads per
1,000 requests (at registration and during traffic), and each replica's working set: how many
distinct adapters it served, against the adapters it keeps warm (more than that and vLLM
reloads from disk: a cold load inside the engine).

    .venv/bin/python bench/affinity_replicas.py [--adapters 64] [--requests 200] [--warm 8]
"""

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import LORALOOP, REPO, Running, free_port, wait_healthy
from bench.many_adapters import adapters, publish, traffic
from serve.settings import ModelSettings
from tests.utils.adapters import make_adapter

MODES = {
    "everywhere": {"LORALOOP_SERVE_ROUTING": "least_busy", "LORALOOP_SERVE_ADAPTER_REPLICAS": "0"},
    "affinity": {"LORALOOP_SERVE_ROUTING": "affinity", "LORALOOP_SERVE_ADAPTER_REPLICAS": "1"},
}


def loads(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("loraloop_adapter_loads_total{"))  # fmt: skip


def run_mode(d: Path, mode: str, seed: Path, args: argparse.Namespace) -> dict[str, object]:
    d.mkdir()
    store = d / "adapters"
    store.mkdir()
    key = "bench-engine-key"
    base = {**os.environ, "LORALOOP_ENGINE_API_KEY": key,
            "LORALOOP_SERVE_ADAPTER_STORE": str(store), "LORALOOP_ENGINE_LOG_DIR": str(d / "logs"),
            "LORALOOP_SERVE_REQUIRE_KEYS": "false",
            "LORALOOP_DB_URL": f"sqlite:///{d / 'bench.db'}"}  # fmt: skip
    with ExitStack() as stack:
        urls = []
        for k in range(2):
            port = free_port()
            env = {**base, "LORALOOP_ENGINE_PORT": str(port),
                   "LORALOOP_ENGINE_MAX_CPU_LORAS": str(args.warm)}  # fmt: skip
            log = d / f"engine-{k}.log"
            proc = subprocess.Popen([LORALOOP, "engine"], env=env, cwd=REPO,
                                    stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
            stack.callback(lambda p=proc: (p.terminate(), p.wait(120)))
            urls.append((f"http://127.0.0.1:{port}", proc, log))
        for url, proc, log in urls:
            wait_healthy(url, proc, log, 900)
        subprocess.run([LORALOOP, "db", "upgrade"], env=base, check=True, capture_output=True)
        port = free_port()
        env = {**base, **MODES[mode], "LORALOOP_SERVE_PORT": str(port),
               "LORALOOP_ENGINE_URLS": json.dumps([u for u, _, _ in urls]),
               "LORALOOP_WORKER_IN_GATEWAY": "false", "LORALOOP_SERVE_RATE_LIMIT_PER_S": "0",
               "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(d / "spool.jsonl")}  # fmt: skip
        log = d / "gateway.log"
        proc = subprocess.Popen([LORALOOP, "run"], env=env, cwd=REPO,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        stack.callback(lambda: (proc.terminate(), proc.wait(120)))
        gateway = f"http://127.0.0.1:{port}"
        wait_healthy(gateway, proc, log)
        running = Running(
            gateway, urls[0][0], ModelSettings().name, store, base["LORALOOP_DB_URL"], key
        )
        paths = adapters(seed, store, args.adapters, 0)
        publish(running, paths)
        registered = loads(gateway)
        result = asyncio.run(traffic(gateway, [p.name for p in paths], args.requests, 7, True))
        during = loads(gateway) - registered
        time.sleep(3)  # the capture writer's last batch
    with sqlite3.connect(d / "bench.db") as conn:
        rows = conn.execute(
            "SELECT engine_url, COUNT(DISTINCT alias), COUNT(*) FROM interaction "
            "GROUP BY engine_url"
        ).fetchall()
    return {"mode": mode, **result, "loads_at_registration": registered,
            "loads_per_1000_requests": 1000 * during / args.requests,
            "working_sets": sorted(r[1] for r in rows),
            "requests_per_replica": sorted(r[2] for r in rows)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapters", type=int, default=64)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warm", type=int, default=8)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_adapter(ModelSettings().model_dir(), d / "seed", seed=1)
        for mode in MODES:
            rows.append(run_mode(d / mode, mode, d / "seed", args))
            print(json.dumps(rows[-1]), flush=True)
    ref = rows[0]
    print(
        f"\n{args.adapters} adapters, Zipf, {args.requests} requests, {args.warm} warm per engine"
    )
    for r in rows:
        print(f"  {r['mode']:>10}: {r['req_s']:.2f} req/s (x{r['req_s'] / ref['req_s']:.2f}), "
              f"p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, failed {r['failed']}; "
              f"gateway loads {r['loads_at_registration']:.0f} at registration, "
              f"{r['loads_per_1000_requests']:.0f} per 1,000 requests; adapters served per "
              f"replica {r['working_sets']} (requests {r['requests_per_replica']})")  # fmt: skip


if __name__ == "__main__":
    main()
