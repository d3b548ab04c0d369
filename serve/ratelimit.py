"""Per-key request rate limits: a token bucket per API key (open mode's keyless callers
from this machine are not limited), on this gateway: N gateways allow N times the rate
(stated in /health).

A refused request gets 429 with Retry-After, as OpenAI's API answers, before it costs
the engine or the database anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = max(1, burst)
        self.max_keys = max_keys
        self._buckets: dict[str, Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0 when the request may go now, else the seconds until it may."""
        wait = self.peek(key)
        if self.enabled and not wait:
            self._buckets[key].tokens -= 1
        return wait

    def peek(self, key: str) -> float:
        """What `take` would answer, without taking."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def describe(self) -> dict[str, object]:
        """What /health states: the limit, and that each gateway keeps its own buckets."""
        return {"per_key_per_s": self.rate, "burst": self.burst, "scope": "per gateway"}

    def retry_after(self, wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))


class InFlight:
    """In-flight requests per key, capped: one client cannot hold every engine connection."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def enter(self, key: str) -> bool:
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def leave(self, key: str) -> None:
        count = self._counts.get(key, 0) - 1
        if count > 0:
            self._counts[key] = count
        else:
            self._counts.pop(key, None)
