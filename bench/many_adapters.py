"""Many adapters on one real engine: what spreading traffic over more of them costs.

One vLLM engine behind the gateway, adapters published to an S3 API server (moto's, a real
process) and fetched, hash-checked and cached by the engine's store plugin, as in production.
First the base model alone, then N aliases (1, 8, 64, 256; each its own rank-8 adapter,
registered and promoted through the admin API); 4 clients send requests whose alias is drawn
uniformly, then from a Zipf law (s = 1.1: a few hot adapters, a long tail). Measured: throughput
and p50/p95 latency as ratios to one adapter (and to the base model) in the same engine; cold
loads (registration: upload, fetch, check, vLLM load) p50/p95. Then the batch-slot sweep:
fresh engines with `--max-loras` 1, 4 and 8 serve the same traffic over 64 adapters.

    .venv/bin/python bench/many_adapters.py [--counts 1 8 64 256] [--slots 1 4 8]
        [--requests 96] [--out rows.json]
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Running, platform
from serve.settings import ModelSettings
from tests.utils.adapters import make_adapter
from tests.utils.s3 import CREDENTIALS, S3Server

CLIENTS = 4
ZIPF_S = 1.1


def adapters(seed_dir: Path, store: Path, count: int, start: int) -> list[Path]:
    """`count` distinct adapters: the seed's weights, each perturbed by its own noise."""
    weights = load_file(seed_dir / "adapter_model.safetensors")
    config = (seed_dir / "adapter_config.json").read_text()
    made = []
    for k in range(start, start + count):
        path = store / f"a{k}"
        path.mkdir(parents=True, exist_ok=True)
        generator = torch.Generator().manual_seed(k)
        noise = {n: 0.01 * torch.randn(t.shape, generator=generator) for n, t in weights.items()}
        noisy = {n: t + noise[n] for n, t in weights.items()}
        save_file(noisy, path / "adapter_model.safetensors")
        (path / "adapter_config.json").write_text(config)
        made.append(path)
    return made


def publish(running: Running, paths: list[Path]) -> list[float]:
    """Register and promote each as its own alias; the seconds each registration took."""
    took = []
    with httpx.Client(base_url=running.gateway, timeout=600) as client:
        for path in paths:
            began = time.perf_counter()
            r = client.post("/admin/adapters", json={"name": path.name, "path": str(path)})
            assert r.status_code == 201, r.text
            took.append(time.perf_counter() - began)
            r = client.post(f"/admin/aliases/{path.name}/promote", json={"version": 1})
            assert r.status_code == 200, r.text
    return took


async def traffic(
    base: str, aliases: list[str], requests: int, seed: int, zipf: bool
) -> dict[str, float]:
    weights = [1 / (k + 1) ** (ZIPF_S if zipf else 0) for k in range(len(aliases))]
    rng = random.Random(seed)
    drawn = [rng.choices(aliases, weights)[0] for _ in range(requests)]
    queue = list(drawn)
    latencies: list[float] = []
    failed = 0

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal failed
        while queue:
            alias = queue.pop()
            body = {"model": alias, "messages": [{"role": "user", "content": "Hello!"}],
                    "max_tokens": 8, "temperature": 0, "ignore_eos": True}  # fmt: skip
            began = time.perf_counter()
            r = await client.post(f"{base}/v1/chat/completions", json=body)
            latencies.append(time.perf_counter() - began)
            failed += r.status_code != 200

    async with httpx.AsyncClient(timeout=600) as client:
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(CLIENTS)))
        seconds = time.perf_counter() - began
    cut = statistics.quantiles(latencies, n=20)
    return {"req_s": len(latencies) / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * cut[18], "failed": failed, "distinct": len(set(drawn))}  # fmt: skip


def quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return 1000 * values[0], 1000 * values[0]
    return 1000 * statistics.median(values), 1000 * statistics.quantiles(values, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", nargs="+", type=int, default=[1, 8, 64, 256])
    parser.add_argument("--slots", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        seed = d / "seed"
        make_adapter(ModelSettings().model_dir(), seed, seed=1)
        s3 = S3Server(d / "moto.log").start()
        store = {**CREDENTIALS, "LORALOOP_STORE_URL": "s3://bench/adapters",
                 "LORALOOP_STORE_ENDPOINT_URL": s3.url,
                 "LORALOOP_STORE_CACHE_DIR": str(d / "engine-cache")}  # fmt: skip
        try:
            with platform(**store) as running:
                result = asyncio.run(
                    traffic(running.gateway, [running.model], args.requests, 0, False)
                )
                for law in ("uniform", "zipf"):
                    rows.append({"sweep": law, "adapters": 0, **result})
                made: list[Path] = []
                for count in sorted(args.counts):
                    fresh = adapters(seed, running.adapter_store, count - len(made), len(made))
                    loads = publish(running, fresh)
                    made += fresh
                    p50, p95 = quantiles(loads)
                    for law in ("uniform", "zipf"):
                        names = [p.name for p in made]
                        result = asyncio.run(
                            traffic(running.gateway, names, args.requests, count, law == "zipf")
                        )
                        rows.append({"sweep": law, "adapters": count, **result,
                                     "cold_load_p50_ms": p50, "cold_load_p95_ms": p95})  # fmt: skip
                        print(json.dumps(rows[-1]), flush=True)
            for slots in args.slots:
                with platform(**store, LORALOOP_ENGINE_MAX_LORAS=str(slots)) as running:
                    fresh = adapters(seed, running.adapter_store, 64, 0)
                    publish(running, fresh)
                    result = asyncio.run(
                        traffic(running.gateway, [p.name for p in fresh], args.requests, 64, True)
                    )
                    rows.append({"sweep": "max_loras", "max_loras": slots, **result})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            s3.stop()
    for sweep, key in (("uniform", "adapters"), ("zipf", "adapters"), ("max_loras", "max_loras")):
        part = [r for r in rows if r["sweep"] == sweep]
        if not part:
            continue
        ref = next((r for r in part if r[key] == 1), part[0])
        print(f"\n{sweep}: ratios to {key}={ref[key]} ({key}=0: the base model alone)")
        for r in part:
            line = (
                f"  {key} {r[key]:>4}: {r['req_s']:.2f} req/s (x{r['req_s'] / ref['req_s']:.2f}), "
                f"p50 {r['p50_ms']:.0f} ms (x{r['p50_ms'] / ref['p50_ms']:.2f}), "
                f"p95 {r['p95_ms']:.0f} ms (x{r['p95_ms'] / ref['p95_ms']:.2f}), "
                f"failed {r['failed']}, {r['distinct']} adapters asked"
            )
            if "cold_load_p50_ms" in r:
                cold = f"{r['cold_load_p50_ms']:.0f}/{r['cold_load_p95_ms']:.0f}"
                line += f"; cold load p50/p95 {cold} ms"
            print(line)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
