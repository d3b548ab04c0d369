"""Per-key request rate limits: a token bucket per API key (per client address when keys
are not required), on this gateway. Off by default; N gateways allow N times the rate.

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
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def retry_after(self, wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
