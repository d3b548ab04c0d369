"""A bounded load loop against gateways: a fixed number of client threads, each sending
requests until a count or a deadline is reached, recording every outcome with its time."""

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Outcome:
    at: float  # time.monotonic() when the answer came back
    gateway: str
    status: int  # 0: no HTTP answer at all
    interaction_id: str | None
    error: str = ""


@dataclass
class Load:
    """Run `load.start()`, do something to the system, then `load.stop()`."""

    gateways: list[str]
    body: dict[str, object]
    clients: int = 4
    max_requests: int = 2000
    max_seconds: float = 120
    headers: dict[str, str] = field(default_factory=dict)  # e.g. a key, through a proxy
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _count: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)

    def start(self) -> "Load":
        deadline = time.monotonic() + self.max_seconds
        for k in range(self.clients):
            thread = threading.Thread(target=self._client, args=(k, deadline), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.max_seconds)
        return sorted(self.outcomes, key=lambda o: o.at)

    def _client(self, k: int, deadline: float) -> None:
        with httpx.Client(timeout=120, headers=self.headers) as client:
            for n in itertools.count():
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                if self._count() >= self.max_requests:
                    return
                gateway = self.gateways[(k + n) % len(self.gateways)]
                try:
                    r = client.post(f"{gateway}/v1/chat/completions", json=self.body)
                    iid = r.headers.get("x-interaction-id")
                    outcome = Outcome(time.monotonic(), gateway, r.status_code, iid, r.text[:200])
                except httpx.HTTPError as exc:
                    outcome = Outcome(time.monotonic(), gateway, 0, None, repr(exc))
                self.outcomes.append(outcome)


def failed(outcomes: list[Outcome], after: float = 0.0) -> list[Outcome]:
    return [o for o in outcomes if o.at >= after and o.status != 200]
