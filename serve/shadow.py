"""Shadow answers: a candidate version answers a share of production's requests off the
request path, and its answer is captured linked to the production interaction
(`shadow_of`). The client never sees it and never waits for it: the shadow request starts
after the client's answer is complete, in a task of its own.

Shadows are bounded: at most `max_in_flight` at a time per gateway; beyond that a shadow
is dropped (and counted) rather than queued, so a slow candidate cannot pile up work.
Streamed requests are shadowed unstreamed: only the final text is compared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from feedback.capture import CaptureWriter
from feedback.models import new_id
from serve.adapters import AdapterRouter
from serve.completions import answer_fields, engine_path
from serve.replicas import ReplicaPool
from serve.target import Target

log = logging.getLogger(__name__)
COPIED = ("client_key_id", "endpoint", "request", "rendered_messages", "template",
          "template_version")  # fmt: skip


class ShadowSender:
    def __init__(
        self,
        router: AdapterRouter,
        replicas: ReplicaPool,
        http: aiohttp.ClientSession,
        capture: CaptureWriter,
        max_in_flight: int = 32,
    ) -> None:
        self.router = router
        self.replicas = replicas
        self.http = http
        self.capture = capture
        self.max_in_flight = max_in_flight
        self.sent = 0
        self.dropped = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def after(
        self, payload: dict[str, Any] | None, target: Target | None, record: dict[str, Any]
    ) -> None:
        """Called once the production answer is complete: maybe start its shadow."""
        if payload is None or target is None or record.get("status_code") != 200:
            return
        shadow = self.router.shadow_for(target)
        if shadow is None:
            return
        if len(self._tasks) >= self.max_in_flight:
            self.dropped += 1
            return
        body = {k: v for k, v in payload.items() if k not in ("stream", "stream_options")}
        body["model"] = shadow.engine_model
        task = asyncio.get_running_loop().create_task(self._answer(body, shadow, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.sent += 1

    async def close(self, timeout: float = 5.0) -> None:
        """Let running shadows finish for a moment, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()

    async def _answer(
        self, body: dict[str, Any], shadow: Target, production: dict[str, Any]
    ) -> None:
        started = time.perf_counter()
        record: dict[str, Any] = {
            "id": new_id(),
            "created_at": datetime.now(UTC).isoformat(),
            **{k: production.get(k) for k in COPIED},
            "alias": shadow.alias,
            "adapter_version": shadow.version,
            "engine_model": shadow.engine_model,
            "shadow_of": production["id"],
            "status_code": 200,
        }
        endpoint = production["endpoint"]
        try:
            url = self.replicas.choose(self.router.holding(shadow), key=self.router.key(shadow))
            record["engine_url"] = url
            await self.router.acquire(shadow, url)
            try:
                async with self.http.post(f"{url}/v1/{engine_path(endpoint)}", json=body) as r:
                    data = await r.json(content_type=None)
                    status = r.status
            finally:
                self.router.release(shadow, url)
            if status >= 400 or not isinstance(data, dict):
                record.update(status_code=502 if status >= 500 else status, error=str(data)[:2000])
            else:
                record.update(answer_fields(data, endpoint))
        except asyncio.CancelledError:
            record.update(status_code=499, error="shadow cancelled at shutdown")
            raise
        except Exception as exc:  # a shadow's failure is data about the candidate, not an outage
            record.update(status_code=502, error=f"shadow failed: {exc!r}")
        finally:
            record["latency_ms"] = (time.perf_counter() - started) * 1000
            self.capture.submit(record)
