"""Bounds on what one request may ask for, checked before anything reaches an engine.

A body is read up to `max_body_bytes` and no further (413), whatever Content-Length
says; JSON nested deeper than `max_json_depth` is refused (400) before it is walked;
an inference request may not ask for more choices, tokens or messages than the limits
allow (400). Each refusal names the parameter and the limit, as OpenAI's errors do.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from serve.errors import APIError, error_response
from serve.protocol import FORWARDED, OWN_FIELDS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    max_n: int = 16
    max_tokens: int = 2048
    max_messages: int = 512


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read up to `limit` bytes and no further (413 past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"request body of {declared} bytes exceeds {limit}", "body_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"request body exceeds {limit} bytes", "body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, limits: RequestLimits) -> Any:
    """The body as JSON, refused when it is not JSON or nested too deeply."""
    try:
        value = json.loads(raw)
    except RecursionError:
        value = None  # deeper than Python's recursion limit: certainly too deep
        deep = True
    except ValueError as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}") from None
    else:
        brackets = raw.count(b"[") + raw.count(b"{")  # an upper bound on the depth, in C
        deep = brackets > limits.max_json_depth and _depth(value) > limits.max_json_depth
    if deep:
        raise APIError(
            400,
            f"the request body is nested more than {limits.max_json_depth} levels deep",
            "invalid_request",
        )
    return value


def _depth(value: Any) -> int:
    """Deepest nesting of lists and objects, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest


def check_inference(body: dict[str, Any], endpoint: str, limits: RequestLimits) -> None:
    """What one inference request may ask of the engine: known fields only, bounded."""
    for name in ("n", "best_of"):
        value = body.get(name)
        if isinstance(value, int) and value > limits.max_n:
            raise APIError(
                400, f"{name} may be at most {limits.max_n}, got {value}", "invalid_request", name
            )
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not 1 <= value <= limits.max_tokens:
            raise APIError(
                400,
                f"{name} must be between 1 and {limits.max_tokens}, the maximum context "
                f"length of the model; got {value}",
                "invalid_request",
                name,
            )
    messages = body.get("messages")
    if endpoint == "chat" and isinstance(messages, list) and len(messages) > limits.max_messages:
        raise APIError(
            400,
            f"messages may hold at most {limits.max_messages} messages, got {len(messages)}",
            "invalid_request",
            "messages",
        )
    if unknown := sorted(set(body) - OWN_FIELDS - FORWARDED[endpoint]):
        raise APIError(
            400,
            f"unknown field '{unknown[0]}': the gateway forwards OpenAI's and vLLM's "
            "sampling, structured-output, tool and logprob fields only",
            "invalid_request",
            unknown[0],
        )


class BodyLimit:
    """ASGI middleware: a body longer than the limit is answered 413 before any route
    reads it. A declared Content-Length is checked up front (the server holds the body
    to it); a chunked body is read here, up to the limit and no further, then replayed."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, own_check: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.own_check = own_check  # paths that read with `read_body` (and capture a 413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.own_check:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"the request body exceeds {self.max_body_bytes} bytes", "body_too_large"
        )
        await response(scope, receive, send)
