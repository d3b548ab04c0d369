"""Simulated end users for rollout tests: each sends chat requests under its own `user`
id and rates every answer, thumbs-down at a rate set per adapter version."""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Run:
    requests: int = 0
    failed: list[str] = field(default_factory=list)
    served: Counter[int] = field(default_factory=Counter)
    versions_per_user: dict[str, set[int]] = field(default_factory=dict)


def simulate(
    base: str,
    alias: str | None,
    versions: dict[str, int],
    down_rate: dict[int, float],
    done: Callable[[], bool],
    users: int = 200,
    clients: int = 4,
    max_seconds: float = 90,
    body: dict[str, object] | None = None,
) -> Run:
    """Until `done()` or `max_seconds`: `clients` threads, users taking turns. `versions`
    maps the fake engine's model name (the answer's `[name]` prefix) to a version; `body`
    adds fields to every request (a template: `alias` None lets it choose the model)."""
    run, lock, stop = Run(), threading.Lock(), threading.Event()
    deadline = time.monotonic() + max_seconds

    def client(k: int) -> None:
        rng = random.Random(k)
        with httpx.Client(base_url=base, timeout=30) as http:
            i = k
            while not stop.is_set() and time.monotonic() < deadline:
                user = f"user-{i % users}"
                i += clients
                question = [{"role": "user", "content": f"hello from {user}"}]
                request = {"user": user, "max_tokens": 4, "messages": question, **(body or {})}
                if alias is not None:
                    request["model"] = alias
                try:
                    reply = http.post("/v1/chat/completions", json=request)
                except httpx.HTTPError as exc:
                    with lock:
                        run.requests += 1
                        run.failed.append(repr(exc))
                    continue
                with lock:
                    run.requests += 1
                    if reply.status_code != 200:
                        run.failed.append(f"{reply.status_code}: {reply.text[:200]}")
                        continue
                content = reply.json()["choices"][0]["message"]["content"]
                version = versions[content[1:].split("]")[0]]
                with lock:
                    run.served[version] += 1
                    run.versions_per_user.setdefault(user, set()).add(version)
                rating = "down" if rng.random() < down_rate[version] else "up"
                feedback = {"interaction_id": reply.json()["interaction_id"], "rating": rating,
                            "end_user_id": user}  # fmt: skip
                for _ in range(50):  # still in the capture queue: 503, come back shortly
                    if http.post("/v1/feedback", json=feedback).status_code != 503:
                        break
                    time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(30)
    return run
