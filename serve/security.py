"""What a request must be before any route sees it, and who counts as "this machine".

- Open mode (`LORALOOP_SERVE_REQUIRE_KEYS=false`) trusts a request only when it comes
  straight from this machine: its peer is a loopback address and it carries no forwarding
  header. Anything relayed to a loopback gateway (a load balancer, an SSH tunnel with a
  proxy, a sidecar) says so in those headers, or comes from another address, and needs a key.
- `RequestGuard` refuses a Host header outside the allow-list, so a page that rebinds its
  own DNS name to 127.0.0.1 cannot talk to a local gateway; and requires
  `application/json` on every API request that changes state, bodyless ones included: a
  browser sends that cross-site only after a CORS preflight, which the gateway never
  answers with CORS headers, so no web page can drive the API with a user's local access.
  Page forms (urlencoded) carry a CSRF token instead (feedback/pages.py).
- X-Forwarded-For/-Proto are believed only from configured proxy addresses (uvicorn's
  middleware, added by the app factory), so `Secure` cookies are set behind TLS termination.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from serve.errors import error_response

FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIXES = ("/v1/", "/admin/")
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1"]


def is_loopback(host: str) -> bool:
    """Whether a bind address or peer is this machine only (names are resolved)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        return all(
            ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
        )
    except (OSError, ValueError):
        return False


def is_local(conn: HTTPConnection) -> bool:
    """The request comes straight from this machine: a loopback peer, no forwarding header."""
    peer = conn.client.host if conn.client else ""
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False
    return loopback and not any(h in conn.headers for h in FORWARDING_HEADERS)


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """`host` is a Host header (`name[:port]`, `[v6]:port`); `allowed` are names, `*.suffix`
    or `*`."""
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


class RequestGuard:
    """Pure ASGI middleware: Host allow-list, and JSON on state-changing API requests."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not host_allowed(host, self.allowed_hosts):
            response = error_response(
                400,
                f"host '{host}' is not served here (LORALOOP_SERVE_ALLOWED_HOSTS)",
                "host_not_allowed",
            )
            await response(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] in UNSAFE_METHODS and path.startswith(API_PREFIXES):
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                response = error_response(
                    415,
                    "send 'Content-Type: application/json' (bodyless requests too): the API "
                    "takes no form or text posts",
                    "unsupported_media_type",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
