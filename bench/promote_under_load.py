"""Promote under load: how long until a new adapter version serves, and how many requests
fail, while 8 clients keep calling the alias. The reference is the same load with no
promotion, in the same run.

    .venv/bin/python bench/promote_under_load.py

Targets: 0 failed requests (issue 3); the promote call within 1 s and the new version
serving within 2 s (issue 25): the time to the first request sent to it, and that no request
sent after the promote returned goes to the old one.
"""

import asyncio
import sys
import time

import httpx
from harness import REPO, platform
from sqlmodel import Session, select

from feedback.models import Interaction
from loraloop import db

sys.path.insert(0, str(REPO))
from tests.utils.adapters import make_adapter

CONCURRENCY = 8


async def drive(
    base: str, seconds: float, done: list[tuple[float, float, str]], failed: list[str]
) -> None:
    async def client_loop(client: httpx.AsyncClient) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            began = time.perf_counter()
            r = await client.post(
                f"{base}/v1/chat/completions",
                json={
                    "model": "support",
                    "messages": [{"role": "user", "content": "Hello!"}],
                    "max_tokens": 4,
                },
            )
            if r.status_code == 200:
                done.append((began, time.perf_counter(), r.headers["X-Interaction-Id"]))
            else:
                failed.append(r.text)

    async with httpx.AsyncClient(timeout=300) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(CONCURRENCY)))


async def scenario(base: str, promote_at: float | None, seconds: float):
    done: list[tuple[float, float, str]] = []
    failed: list[str] = []
    load = asyncio.create_task(drive(base, seconds, done, failed))
    promote_started = promote_returned = None
    if promote_at is not None:
        await asyncio.sleep(promote_at)
        async with httpx.AsyncClient(timeout=300) as client:
            promote_started = time.perf_counter()
            r = await client.post(f"{base}/admin/aliases/support/promote", json={"version": 2})
            promote_returned = time.perf_counter()
            assert r.status_code == 200, r.text
    await load
    return done, failed, promote_started, promote_returned


def main() -> None:
    with platform() as p:
        for seed, name in ((1, "v1"), (2, "v2")):
            make_adapter(REPO / "data" / "models" / p.model, p.adapter_store / name, seed=seed)
            r = httpx.post(
                f"{p.gateway}/admin/adapters", json={"name": "support", "path": name}, timeout=120
            )
            assert r.status_code == 201, r.text
        httpx.post(f"{p.gateway}/admin/aliases/support/promote", json={"version": 1}, timeout=120)
        ref_done, ref_failed, _, _ = asyncio.run(scenario(p.gateway, None, 15))
        done, failed, started, returned = asyncio.run(scenario(p.gateway, 5, 20))
        time.sleep(1)
        engine = db.create_db_engine(p.db_url)
        with Session(engine) as session:
            rows = session.exec(select(Interaction.id, Interaction.adapter_version)).all()
            versions = {i: v for i, v in rows}
        first_v2 = min(t for _, t, i in done if versions.get(i) == 2)
        routed_v2 = min(b for b, _, i in done if versions.get(i) == 2)
        last_v1 = max(b for b, _, i in done if versions.get(i) == 1)
    assert started is not None and returned is not None
    print(f"reference (no promote): {len(ref_done) / 15:.1f} req/s, failed {len(ref_failed)}")
    print(f"with promote          : {len(done) / 20:.1f} req/s, failed {len(failed)}")
    print(f"promote call (load on every engine + switch): {(returned - started) * 1000:.0f} ms")
    print(f"promote start -> first request sent to v2   : {(routed_v2 - started) * 1000:.0f} ms")
    print(f"promote start -> last request sent to v1    : {(last_v1 - started) * 1000:.0f} ms")
    print(f"promote start -> first response from v2     : {(first_v2 - started) * 1000:.0f} ms")
    print(
        f"served by v1 / v2: {sum(1 for *_, i in done if versions.get(i) == 1)} / "
        f"{sum(1 for *_, i in done if versions.get(i) == 2)}"
    )
    print(f"throughput ratio with/without promote: {len(done) / 20 / (len(ref_done) / 15):.2f}")
    print(f"target 0 failed: {'met' if not failed else 'NOT met'}")


if __name__ == "__main__":
    main()
