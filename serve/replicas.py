"""Engine replicas as the gateway sees them: which answer, how busy each is, where to send.

Routing is health-aware and LoRA-aware. By default (`affinity`) a request for an adapter goes
to its alias's home: the replicas ranked by rendezvous hashing of the alias, the first one
whose outstanding requests stay within `load_factor` times the average or under `min_load`
(consistent hashing with bounded loads, Mirrokni et al. 2018), so each replica holds a
stable share of the adapters and a hot alias spills to its next-ranked replica. A
request for the base model, or with `least_busy` routing (vLLM production-stack's rule), goes
to the least busy healthy replica that already holds the adapter, else the least busy one
(which then loads it on demand). A replica leaves rotation at once when a request cannot
reach it, or when its health check fails; it returns only after a check succeeds *and*
the adapters in use were loaded on it again (a replica that comes back may have restarted
empty). When no replica is healthy, all are tried anyway: a check may simply be late.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)


def rank(key: str, urls: Collection[str]) -> list[str]:
    """Rendezvous (highest random weight) order of `urls` for `key`: stable for a key, and a
    replica that leaves moves only the keys that ranked it first."""

    def weight(url: str) -> bytes:
        return hashlib.blake2b(f"{key}\0{url}".encode(), digest_size=8).digest()

    return sorted(urls, key=weight, reverse=True)


class NoReplica(RuntimeError):
    """Every replica has been tried for this request."""


@dataclass
class Replica:
    url: str
    healthy: bool = True
    outstanding: int = 0
    last_error: str | None = None
    changed_at: float = field(default_factory=time.time)
    recovering: bool = False

    def status(self) -> dict[str, object]:
        return {
            "url": self.url,
            "state": "up" if self.healthy else ("recovering" if self.recovering else "down"),
            "outstanding": self.outstanding,
            "last_error": self.last_error,
            "since": self.changed_at,
        }


class ReplicaPool:
    """The replicas of one gateway; `watch` keeps their health current."""

    def __init__(
        self,
        urls: list[str],
        client: httpx.AsyncClient,
        check_interval_s: float = 2.0,
        check_timeout_s: float = 2.0,
        load_factor: float | None = 1.25,
        min_load: int = 8,
    ) -> None:
        """`load_factor`: affinity routing's bound (a replica takes a key's request while its
        outstanding requests stay within this times the average, or under `min_load`, since
        an engine batches a few requests at no cost); None: least busy only."""
        self.replicas = {url: Replica(url) for url in urls}
        self.load_factor = load_factor
        self.min_load = min_load
        self.client = client
        self.check_interval_s = check_interval_s
        self.check_timeout_s = check_timeout_s
        self.on_recover: Callable[[str], Awaitable[None]] | None = None
        self.on_change: Callable[[str, bool], None] | None = None
        self._rr = itertools.count()

    @property
    def urls(self) -> list[str]:
        return list(self.replicas)

    def healthy(self) -> list[str]:
        return [r.url for r in self.replicas.values() if r.healthy]

    def homes(self, key: str, count: int) -> list[str]:
        """The `count` replicas a key's adapters live on ahead of requests (0: all of them),
        ranked over every replica, up or not, so that a replica that comes back is the home
        of the same keys as before."""
        ranked = rank(key, self.urls)
        return ranked[:count] if count > 0 else ranked

    def choose(
        self, holding: Collection[str] = (), exclude: Collection[str] = (), key: str | None = None
    ) -> str:
        """The replica for the next request. `holding`: replicas that have its adapter;
        `key`: its alias, for affinity routing (None: the base model, least busy)."""
        left = [r for r in self.replicas.values() if r.url not in exclude]
        if not left:
            raise NoReplica("no engine replica is left to try")
        live = [r for r in left if r.healthy] or left
        if key is not None and self.load_factor is not None:
            total = sum(r.outstanding for r in live) + 1
            cap = max(self.min_load, math.ceil(self.load_factor * total / len(live)))
            by_url = {r.url: r for r in live}
            for url in rank(key, list(by_url)):
                if by_url[url].outstanding + 1 <= cap:
                    return url
        warm = [r for r in live if r.url in holding] or live
        least = min(r.outstanding for r in warm)
        best = [r for r in warm if r.outstanding == least]
        return best[next(self._rr) % len(best)].url

    def begin(self, url: str) -> None:
        self.replicas[url].outstanding += 1

    def end(self, url: str) -> None:
        self.replicas[url].outstanding -= 1

    def mark_down(self, url: str, reason: str) -> None:
        """Out of rotation now (a request could not reach it); the watch brings it back."""
        replica = self.replicas.get(url)
        if replica is None:
            return
        replica.last_error = reason
        if replica.healthy:
            log.warning("engine replica %s is down: %s", url, reason)
            self._set(replica, False)

    async def check(self, url: str) -> bool:
        """Probe one replica and move it in or out of rotation; True when it is up."""
        replica = self.replicas[url]
        try:
            response = await self.client.get(f"{url}/health", timeout=self.check_timeout_s)
            ok = response.status_code == 200
            reason = f"/health answered {response.status_code}"
        except httpx.HTTPError as exc:
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            self.mark_down(url, reason)
            return False
        if replica.healthy or replica.recovering:
            return replica.healthy
        replica.recovering = True
        try:
            if self.on_recover is not None:
                await self.on_recover(url)
        except Exception as exc:
            replica.last_error = f"adapters could not be restored: {exc}"
            log.warning("engine replica %s answers but %s", url, replica.last_error)
            return False
        finally:
            replica.recovering = False
        replica.last_error = None
        log.info("engine replica %s is back in rotation", url)
        self._set(replica, True)
        return True

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(url) for url in self.replicas))

    async def watch(self) -> None:
        """Probe each replica on its own clock: a slow one never delays the others."""
        await asyncio.gather(*(self._watch(url) for url in self.replicas))

    async def _watch(self, url: str) -> None:
        while True:
            await asyncio.sleep(self.check_interval_s)
            await self.check(url)

    def status(self) -> list[dict[str, object]]:
        return [r.status() for r in self.replicas.values()]

    def _set(self, replica: Replica, healthy: bool) -> None:
        replica.healthy = healthy
        replica.changed_at = time.time()
        if self.on_change is not None:
            self.on_change(replica.url, healthy)
