"""The registry at scale (issue 25): a gateway whose database holds 1,000 aliases with 10,000
adapter versions (one in production each, loaded on its engine) against one holding a single
alias, same run, alternating rounds: median added latency of a chat request, the cost of a
reconcile (timed around `GET /admin/aliases?limit=1`, which reconciles and answers one row),
of the full model list, and the gateway's resident memory.

    .venv/bin/python bench/registry_scale.py [--aliases 1000 --versions-each 10 --requests 300]

The engine is the fake one (tests/fake_engine.py, no delay): what is measured is the gateway's
own share. Goal (issue 25): at most 1 ms added median latency.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import insert
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import LORALOOP, REPO, fake_adapter, fake_gateway_env, free_port
from loraloop.db import create_db_engine
from serve.registry import inspect_adapter
from serve.tables import AdapterVersion, Alias, utcnow

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def fill(db_url: str, store: Path, aliases: int, each: int) -> None:
    """`aliases` aliases of `each` versions (one directory shared by all), the newest in
    production; written an hour ago, as a registry that grew over time."""
    path = fake_adapter(store, "shared")
    digest = inspect_adapter(path, store, 64).content_hash
    hour_ago = utcnow() - timedelta(hours=1)
    engine = create_db_engine(db_url)
    with Session(engine) as session:
        session.execute(insert(AdapterVersion), [
            {"name": f"customer-{a:05d}", "version": v, "engine_name": f"customer-{a:05d}-v{v}",
             "path": str(path), "base_model": "base", "rank": 8, "content_hash": digest,
             "created_at": hour_ago, "metrics": {}, "lineage": {}}
            for a in range(aliases) for v in range(1, each + 1)
        ])  # fmt: skip
        session.execute(insert(Alias), [
            {"name": f"customer-{a:05d}", "production_version": each} for a in range(aliases)
        ])  # fmt: skip
        session.commit()
    engine.dispose()


@contextmanager
def gateway(d: Path, aliases: int, each: int) -> Iterator[tuple[httpx.Client, int]]:
    d.mkdir()
    store = d / "adapters"
    store.mkdir()
    port = free_port()
    env = fake_gateway_env(d, store, port, LORALOOP_SERVE_RATE_LIMIT_PER_S="0")
    db_url = env["LORALOOP_DB_URL"]
    subprocess.run([LORALOOP, "db", "upgrade"], env=env, check=True, capture_output=True)
    fill(db_url, store, aliases, each)
    proc = subprocess.Popen([LORALOOP, "run"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            yield http, proc.pid
    finally:
        proc.terminate()
        proc.wait(60)


def timed(http: httpx.Client, method: str, path: str, **kwargs: Any) -> float:
    """Milliseconds for one call that must succeed."""
    started = time.perf_counter()
    http.request(method, path, **kwargs).raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aliases", type=int, default=1000)
    parser.add_argument("--versions-each", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    sizes = {"1 alias": (1, 1), "large": (args.aliases, args.versions_each)}
    ms: dict[str, dict[str, list[float]]] = {k: {"chat": [], "reconcile": [], "models": []}
                                             for k in sizes}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        began = time.perf_counter()
        running = {k: stack.enter_context(gateway(Path(tmp) / k.replace(" ", "-"), *size))
                   for k, size in sizes.items()}  # fmt: skip
        print(f"both gateways up (the large one loaded {args.aliases} adapters) in "
              f"{time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
        for http, _ in running.values():
            for _ in range(30):
                http.post("/v1/chat/completions", json={**BODY, "model": "customer-00000"})
        for _ in range(args.rounds):
            for k, (http, _) in running.items():
                for i in range(args.requests):
                    body = {**BODY, "model": f"customer-{i % sizes[k][0]:05d}"}
                    ms[k]["chat"].append(timed(http, "POST", "/v1/chat/completions", json=body))
                for _ in range(20):
                    ms[k]["reconcile"].append(
                        timed(http, "GET", "/admin/aliases", params={"limit": 1})
                    )
                for _ in range(3):
                    ms[k]["models"].append(timed(http, "GET", "/v1/models"))
        rss = {k: psutil.Process(pid).memory_info().rss / 2**20 for k, (_, pid) in running.items()}
    med = {k: {what: statistics.median(v) for what, v in m.items()} for k, m in ms.items()}
    label = f"{args.aliases} aliases / {args.aliases * args.versions_each} versions"
    print(f"\n| median ms | 1 alias | {label} | added | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for what in ("chat", "reconcile", "models"):
        one, large = med["1 alias"][what], med["large"][what]
        print(f"| {what} | {one:.2f} | {large:.2f} | {large - one:+.2f} | {large / one:.2f} |")
    one, large = rss["1 alias"], rss["large"]
    print(f"| gateway RSS MiB | {one:.0f} | {large:.0f} | {large - one:+.0f} | {large / one:.2f} |")


if __name__ == "__main__":
    main()
