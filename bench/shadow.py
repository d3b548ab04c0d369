"""Shadow mode's cost to the client: median latency of single chat requests through the
gateway with a shadow answering 100 % of production's requests, against the shadow off,
in alternating rounds of the same run.

    .venv/bin/python bench/shadow.py [--requests 200 --rounds 4 --engine-delay 0.05]

The engine is the fake one (tests/fake_engine.py) with a fixed delay per completion, so
what is measured is the gateway's share: the shadow starts after the client's answer is
complete, on its own task. On a real engine the shadow also takes engine time, which
batching hides on a GPU and a 2-core CPU does not; that cost is the engine's capacity, not
the request path's. Target (issue 13): no measurable added median latency.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import LORALOOP, REPO, fake_adapter, fake_gateway_env, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--engine-delay", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        store = d / "adapters"
        for v in ("v1", "v2"):
            fake_adapter(store, v)
        port = free_port()
        env = fake_gateway_env(d, store, port, FAKE_ENGINE_DELAY_S=str(args.engine_delay))
        subprocess.run([LORALOOP, "db", "upgrade"], env=env, check=True, capture_output=True)
        proc = subprocess.Popen([LORALOOP, "run"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    try:
                        if http.get("/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.3)
                for v in ("v1", "v2"):
                    http.post("/admin/adapters", json={"name": "a", "path": str(store / v)})
                http.post("/admin/aliases/a/promote", json={"version": 1})
                body = {"model": "a", "messages": [{"role": "user", "content": "hi"}]}
                latencies: dict[str, list[float]] = {"off": [], "shadow 100%": []}
                for _ in range(20):
                    http.post("/v1/chat/completions", json=body)  # warm-up
                for _ in range(args.rounds):
                    for mode, share in (("off", None), ("shadow 100%", 1.0)):
                        http.post(
                            "/admin/aliases/a/shadow",
                            json={"version": share and 2, "share": share or 0},
                        )
                        for _ in range(args.requests):
                            started = time.perf_counter()
                            assert http.post("/v1/chat/completions", json=body).status_code == 200
                            latencies[mode].append((time.perf_counter() - started) * 1000)
        finally:
            proc.terminate()
            proc.wait(60)
    med = {k: statistics.median(v) for k, v in latencies.items()}
    print(f"median latency, {args.rounds} alternating rounds of {args.requests} requests, "
          f"engine delay {args.engine_delay * 1000:.0f} ms:")  # fmt: skip
    for k, v in med.items():
        print(f"  {k:12s} {v:7.2f} ms")
    added = med["shadow 100%"] - med["off"]
    print(f"added median latency with shadow at 100 %: {added:+.2f} ms "
          f"(ratio {med['shadow 100%'] / med['off']:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
