"""Forwarding one inference request to an engine, streaming it back, and capturing it.

Every request that got past authentication yields exactly one capture record, whether
it succeeded, was refused, or broke off; the record is handed to the capture writer
without waiting on the database. A request that cannot reach its engine replica before
any byte went to the client is sent once more, to another replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import Engine

from feedback.capture import CaptureWriter
from feedback.models import new_id
from serve.adapters import AdapterRouter
from serve.auth import ROLES
from serve.completions import answer_fields, engine_path, note_chunk
from serve.errors import APIError, EngineLoadError, EngineUnreachable, error_response
from serve.limits import RequestLimits, check_inference, parse_json, read_body
from serve.metrics import GatewayMetrics
from serve.protocol import OWN_FIELDS, ChatCompletionRequest, CompletionRequest, TemplateFields
from serve.ratelimit import InFlight
from serve.registry import RegistryError
from serve.rendering import apply_template
from serve.replicas import NoReplica, ReplicaPool
from serve.shadow import ShadowSender
from serve.target import Target, sticky_id
from serve.templates import TemplateStore
from serve.tracing import RequestTrace, Tracing

log = logging.getLogger(__name__)
ATTEMPTS = 2  # the first replica, then one other


class Unreachable(Exception):
    """The replica could not be reached, and nothing has gone to the client yet."""


class Proxy:
    """The inference path; built once per app from the app's collaborators."""

    def __init__(
        self,
        router: AdapterRouter,
        replicas: ReplicaPool,
        http: aiohttp.ClientSession,
        templates: TemplateStore,
        db: Engine,
        capture: CaptureWriter,
        metrics: GatewayMetrics,
        limits: RequestLimits,
        shadow: ShadowSender,
        inflight: InFlight,
        tracing: Tracing | None = None,
    ) -> None:
        self.router = router
        self.replicas = replicas
        self.http = http
        self.templates = templates
        self.db = db
        self.capture = capture
        self.metrics = metrics
        self.limits = limits
        self.shadow = shadow
        self.inflight = inflight
        self.tracing = tracing or Tracing()

    async def handle(self, request: Request, endpoint: str) -> Response:
        started = time.perf_counter()
        principal = getattr(request.state, "principal", None)
        key_id = principal.key_id if principal is not None else None
        trace = self.tracing.request(request.headers, endpoint)
        record: dict[str, Any] = {
            "trace_id": trace.trace_id,
            "_trace": trace,
            "id": new_id(),
            "created_at": datetime.now(UTC).isoformat(),
            "client_key_id": key_id,
            "endpoint": endpoint,
            "request": {},
            "status_code": 200,
        }
        payload: dict[str, Any] | None = None
        target: Target | None = None
        holder = key_id or (request.client and request.client.host)
        try:
            if not self.inflight.enter(str(holder)):
                raise APIError(
                    429,
                    f"{self.inflight.limit} requests of this key are in flight already; "
                    "retry when one has finished",
                    "rate_limit_exceeded",
                )
            record["_holder"] = str(holder)
            payload, target = await self._prepare(request, endpoint, record, principal)
            tried: list[str] = []
            reason = "no engine replica is configured"
            for _ in range(ATTEMPTS):
                try:
                    url = self.replicas.choose(
                        self.router.holding(target), tried, self.router.key(target)
                    )
                except NoReplica:
                    break
                if tried:
                    self.metrics.retries.inc()
                tried.append(url)
                try:
                    return await self._attempt(url, endpoint, payload, target, record, started)
                except Unreachable as exc:
                    reason = str(exc)
                    trace.engine_done(reason)
                    self.replicas.mark_down(url, reason)
            raise APIError(502, f"no engine replica answered ({reason})", "engine_unavailable")
        except APIError as exc:
            record.update(status_code=exc.status, error=exc.message)
            return self._with_id(
                error_response(exc.status, exc.message, exc.code, exc.param), record
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.update(status_code=502, error=f"engine unreachable: {exc!r}")
            return self._with_id(error_response(502, "the engine did not answer"), record)
        except asyncio.CancelledError:
            # The server's shutdown bound ran out while this request waited on its engine:
            # the client still gets an answer it can retry elsewhere, and the record says why.
            message = "the gateway is shutting down; retry the request"
            record.update(status_code=503, error=f"cancelled: {message}")
            response = error_response(503, message, "shutting_down")
            response.headers["Retry-After"] = "1"
            return self._with_id(response, record)
        except Exception as exc:  # a defect: still an OpenAI error, captured and logged
            log.exception("inference request %s failed", record["id"])
            record.update(status_code=500, error=f"internal error: {exc!r}")
            return self._with_id(error_response(500, "internal error"), record)
        finally:
            if not record.get("_streaming"):
                self._finish(record, started, payload, target)

    async def _attempt(
        self,
        url: str,
        endpoint: str,
        payload: dict[str, Any],
        target: Target,
        record: dict[str, Any],
        started: float,
    ) -> Response:
        """One try on one replica; Unreachable when it failed before the client saw a byte."""
        trace: RequestTrace = record["_trace"]
        try:
            with trace.step("acquire adapter"):
                await self.router.acquire(target, url)
        except EngineUnreachable as exc:
            raise Unreachable(str(exc)) from None
        except EngineLoadError as exc:
            raise APIError(max(502, exc.status), str(exc), "adapter_load_failed") from None
        record["engine_url"] = url
        headers = trace.engine_call(target.engine_model, url)
        if payload.get("stream"):
            return await self._stream(url, endpoint, payload, target, record, started, headers)
        try:
            return await self._forward(url, endpoint, payload, record, headers)
        except aiohttp.ClientConnectionError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None
        finally:
            self.router.release(target, url)

    async def _prepare(
        self, request: Request, endpoint: str, record: dict[str, Any], principal: Any
    ) -> tuple[dict[str, Any], Target]:
        raw = await read_body(request, self.limits.max_body_bytes)
        record["request"] = {"raw": raw[:10_000].decode(errors="replace")}
        body = parse_json(raw, self.limits)
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object")
        record["request"] = body
        model_cls = ChatCompletionRequest if endpoint == "chat" else CompletionRequest
        try:
            req: TemplateFields = model_cls.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"])
            raise APIError(400, f"{param}: {first['msg']}", "invalid_request", param) from None
        check_inference(body, endpoint, self.limits)
        payload = {k: v for k, v in body.items() if k not in OWN_FIELDS}
        model = req.model
        if req.template is not None:
            sticky = sticky_id(body, request.headers)
            with record["_trace"].step("render template"):
                default_alias = await apply_template(
                    self.templates, self.db, req, payload, record, sticky
                )
            model = model or default_alias
        if not model:
            raise APIError(400, "model is required", "invalid_request", "model")
        try:
            with record["_trace"].step("route"):
                target = await self.router.resolve(model, sticky_id(body, request.headers))
        except RegistryError as exc:
            raise APIError(exc.status, str(exc), exc.code, "model") from None
        record.update(
            alias=target.alias,
            adapter_version=target.version,
            engine_model=target.engine_model,
            requested_model=model,
            pinned=target.pinned,
        )
        role = principal.role if principal is not None else "client"
        if target.pinned and not self.router.serving(target) and ROLES[role] < ROLES["reviewer"]:
            raise APIError(
                403,
                f"model '{model}': version {target.version} is not serving (production, canary "
                "or shadow); pinning to it needs the reviewer role",
                "insufficient_role",
                "model",
            )
        if endpoint == "chat" and not payload.get("messages"):
            raise APIError(400, "messages must not be empty", "invalid_request", "messages")
        if endpoint == "completions" and not payload.get("prompt"):
            raise APIError(400, "prompt must not be empty", "invalid_request", "prompt")
        payload["model"] = target.engine_model
        return payload, target

    async def _forward(
        self,
        url: str,
        endpoint: str,
        payload: dict[str, Any],
        record: dict[str, Any],
        headers: dict[str, str],
    ) -> Response:
        path = f"{url}/v1/{engine_path(endpoint)}"
        async with self.http.post(path, json=payload, headers=headers) as response:
            data = await _json(response)
        if response.status >= 400 or not isinstance(data, dict):
            return self._engine_error(response.status, data, record)
        data["model"] = record["requested_model"]
        data["interaction_id"] = record["id"]
        record.update(answer_fields(data, endpoint))
        return self._with_id(JSONResponse(data), record)

    async def _stream(
        self,
        url: str,
        endpoint: str,
        payload: dict[str, Any],
        target: Target,
        record: dict[str, Any],
        started: float,
        headers: dict[str, str],
    ) -> Response:
        path = f"{url}/v1/{engine_path(endpoint)}"
        try:
            upstream = await self.http.post(path, json=payload, headers=headers)
        except aiohttp.ClientConnectionError as exc:
            self.router.release(target, url)
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            self.router.release(target, url)
            raise
        if upstream.status >= 400:
            data = await _json(upstream)
            upstream.release()
            self.router.release(target, url)
            return self._engine_error(upstream.status, data, record)
        record["_streaming"] = True
        return self._with_id(
            StreamingResponse(
                self._relay(upstream, url, endpoint, payload, target, record, started),
                media_type="text/event-stream",
            ),
            record,
        )

    async def _relay(
        self,
        upstream: aiohttp.ClientResponse,
        url: str,
        endpoint: str,
        payload: dict[str, Any],
        target: Target,
        record: dict[str, Any],
        started: float,
    ) -> AsyncIterator[bytes]:
        parts: list[str] = []
        finished = False
        try:
            async for raw_line in upstream.content:
                line = raw_line.decode(errors="replace").rstrip("\r\n")
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    finished = True
                    yield b"data: [DONE]\n\n"
                    continue
                chunk = json.loads(data)
                chunk["model"] = record["requested_model"]
                chunk["interaction_id"] = record["id"]
                note_chunk(chunk, endpoint, record, parts, started)
                yield f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()
            if not finished:
                raise aiohttp.ClientPayloadError("the engine closed the stream before [DONE]")
        except (aiohttp.ClientError, ValueError) as exc:
            # The engine failed mid-stream: the client gets an error event it can parse
            # (as vLLM and OpenAI send them), not a connection cut off mid-chunk.
            upstream.close()
            message = "the engine failed while streaming; the answer is incomplete"
            record.update(status_code=502, error=f"{message}: {exc!r}")
            body = error_response(502, message, "engine_error").body
            yield b"data: " + bytes(body) + b"\n\ndata: [DONE]\n\n"
        except BaseException as exc:
            # The client went away (the server cancels this generator): closing the
            # connection makes the engine abort the request instead of finishing it.
            upstream.close()
            record.update(status_code=499, error=f"client disconnected mid-stream ({exc!r})")
            raise
        finally:
            upstream.release()
            self.router.release(target, url)
            record["response_text"] = "".join(parts)
            self._finish(record, started, payload, target)

    def _engine_error(self, status: int, data: Any, record: dict[str, Any]) -> Response:
        """vLLM's own 4xx (e.g. max_tokens beyond the context) passed on as OpenAI errors."""
        error = data.get("error", {}) if isinstance(data, dict) else {}
        message = error.get("message") if isinstance(error, dict) else str(data)
        status = status if status < 500 else 502
        record.update(status_code=status, error=message or "engine error")
        return self._with_id(
            error_response(status, message or "engine error", "engine_error"), record
        )

    @staticmethod
    def _with_id(response: Response, record: dict[str, Any]) -> Response:
        response.headers["X-Interaction-Id"] = record["id"]
        if record.get("trace_id"):
            response.headers["X-Trace-Id"] = record["trace_id"]
        return response

    def _finish(
        self,
        record: dict[str, Any],
        started: float,
        payload: dict[str, Any] | None,
        target: Target | None,
    ) -> None:
        record["latency_ms"] = (time.perf_counter() - started) * 1000
        record.pop("_trace").finish(record, payload)
        if (holder := record.pop("_holder", None)) is not None:
            self.inflight.leave(holder)
        record.pop("_streaming", None)
        record.pop("requested_model", None)
        self.metrics.observe(record)
        self.capture.submit(record)
        self.shadow.after(payload, target, record)


async def _json(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text)
    except ValueError:
        return {"error": {"message": text[:2000]}}
