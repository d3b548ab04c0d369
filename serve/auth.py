"""API keys with roles. Keys are stored as SHA-256 hashes of a random secret.

A key reads `ll-<id>-<secret>`: the id finds the row, the secret is compared by hash.
The embedded default may run open (no keys) on a loopback address only; every caller
is then treated as admin, and the gateway says so at start.

Every route declares who may call it: `require(role)` or `public()`; the role matrix
test reads those declarations off the route table, so a route without one fails it.
A verified key is cached for `cache_ttl_s` (the reconcile interval): a key revoked on
this gateway stops working at once, on the others within that interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from serve.errors import APIError
from serve.ratelimit import RateLimiter
from serve.tables import ApiKey

Role = Literal["client", "reviewer", "admin"]
ROLES: dict[str, int] = {"client": 1, "reviewer": 2, "admin": 3}
ROLE_ATTR = "loraloop_role"  # set on each access dependency: "public" or a role


@dataclass(frozen=True)
class Principal:
    key_id: str | None
    role: str


def create_key(session: Session, role: str, name: str | None = None) -> str:
    """Store a new key and return it in plain text (the only time it is visible)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    session.add(ApiKey(id=key_id, secret_hash=_hash(secret), role=role, name=name))
    session.commit()
    return f"ll-{key_id}-{secret}"


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at))))


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    """Mark a key revoked (kept for the audit trail); None when there is no such key."""
    key = session.get(ApiKey, key_id)
    if key is None:
        return None
    key.revoked = True
    session.add(key)
    session.commit()
    session.refresh(key)
    return key


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


OPEN = Principal(None, "admin")


class Authenticator:
    """Checks bearer keys against the database, with a short cache of verified keys."""

    def __init__(self, db: Engine, open_access: bool, cache_ttl_s: float = 5.0) -> None:
        self.db = db
        self.open_access = open_access
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (after it was revoked here)."""
        for key in [k for k in self._cache if k.split("-", 2)[1:2] == [key_id]]:
            del self._cache[key]

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.open_access:
            if not authorization:
                return OPEN
            # SDKs always send some key; open access takes any, but keeps a real key's id.
            try:
                return await self._authenticate(authorization)
            except APIError:
                return OPEN
        return await self._authenticate(authorization)

    async def _authenticate(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise APIError(
                401, "missing API key: send 'Authorization: Bearer <key>'", "invalid_api_key"
            )
        key = authorization[7:].strip()
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_ttl_s:
            principal = cached[1]
        else:
            principal = await asyncio.to_thread(self._lookup, key)
            if len(self._cache) > 10_000:  # a flood of made-up keys must not grow it forever
                self._cache.clear()
            self._cache[key] = (time.monotonic(), principal)
        if principal is None:
            raise APIError(401, "invalid API key", "invalid_api_key")
        return principal

    def _lookup(self, key: str) -> Principal | None:
        parts = key.split("-", 2)
        if len(parts) == 3 and parts[0] == "ll":
            with Session(self.db) as session:
                row = session.get(ApiKey, parts[1])
            if (
                row is not None
                and not row.revoked
                and hmac.compare_digest(row.secret_hash, _hash(parts[2]))
            ):
                return Principal(row.id, row.role)
        return None


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller's key must have at least `role`."""

    async def dependency(request: Request) -> Principal:
        auth: Authenticator = request.app.state.auth
        principal = await auth.authenticate(request.headers.get("authorization"))
        if ROLES[principal.role] < ROLES[role]:
            raise APIError(
                403,
                f"this needs the {role} role; the key has {principal.role}",
                "insufficient_role",
            )
        limiter: RateLimiter = request.app.state.limiter
        caller = principal.key_id or (request.client.host if request.client else "local")
        if wait := limiter.take(caller):
            raise APIError(
                429,
                f"rate limit of {limiter.rate:g} requests/s for this key reached; retry later",
                "rate_limit_exceeded",
                headers={"Retry-After": limiter.retry_after(wait)},
            )
        request.state.principal = principal
        return principal

    setattr(dependency, ROLE_ATTR, role)
    return dependency


def signed_in(role: Role, cookie: str) -> Callable[[Request], Awaitable[Principal | None]]:
    """A FastAPI dependency for pages: the principal whose key is in the `cookie`, or None
    when there is none, it is not valid, or its role is below `role` (the page then asks
    the browser to sign in)."""

    async def dependency(request: Request) -> Principal | None:
        key = request.cookies.get(cookie)
        auth: Authenticator = request.app.state.auth
        try:
            principal = await auth.authenticate(f"Bearer {key}" if key else None)
        except APIError:
            return None
        if ROLES[principal.role] < ROLES[role]:
            return None
        request.state.principal = principal
        return principal

    setattr(dependency, ROLE_ATTR, f"page:{role}")
    return dependency


def public() -> Callable[[], None]:
    """A FastAPI dependency that declares a route open to anyone (health, metrics, sign-in)."""

    def dependency() -> None:
        return None

    setattr(dependency, ROLE_ATTR, "public")
    return dependency


def declared_roles(dependant: object) -> set[str]:
    """The access declarations among a route's dependencies, nested ones included."""
    found: set[str] = set()
    stack = [dependant]
    while stack:
        node = stack.pop()
        role = getattr(getattr(node, "call", None), ROLE_ATTR, None)
        if role is not None:
            found.add(role)
        stack.extend(getattr(node, "dependencies", []))
    return found
