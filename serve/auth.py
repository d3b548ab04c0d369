"""API keys with roles. Keys are stored as SHA-256 hashes of a random secret.

A key reads `ll-<id>-<secret>`: the id finds the row, the secret is compared by hash.
Open mode (an explicit opt-in, and only on a loopback bind) lets requests straight from
this machine in without a key, as admin; every other request still needs one
(serve/security.py says what "straight from this machine" means). The pages sign in to a
server-side session: their cookie holds a random token, never the key.

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
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import Request
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from feedback.models import aware
from serve.errors import APIError
from serve.ratelimit import RateLimiter
from serve.security import is_local
from serve.tables import ApiKey, PageSession

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
    """Checks bearer keys against the database, with a short cache of verified keys, and
    page sessions (never cached: a sign-out or a revoked key ends them at once).

    `failures` limits failed authentications per client address: past it a caller gets 429
    before its key is even looked up."""

    def __init__(
        self,
        db: Engine,
        open_access: bool,
        cache_ttl_s: float = 5.0,
        session_ttl_s: float = 8 * 3600,
        failures: RateLimiter | None = None,
    ) -> None:
        self.db = db
        self.open_access = open_access
        self.cache_ttl_s = cache_ttl_s
        self.session_ttl_s = session_ttl_s
        self.failures = failures or RateLimiter(0, 1)
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (after it was revoked here)."""
        for key in [k for k in self._cache if k.split("-", 2)[1:2] == [key_id]]:
            del self._cache[key]

    async def authenticate(
        self, authorization: str | None, local: bool = False, address: str = ""
    ) -> Principal:
        """The caller of a request. `local`: it came straight from this machine (only then
        does open mode let it in without a key); `address` is counted on failure."""
        if self.open_access and local:
            if not authorization:
                return OPEN
            # SDKs always send some key; open access takes any, but keeps a real key's id.
            try:
                return await self._authenticate(authorization)
            except APIError:
                return OPEN
        if wait := self.failures.peek(address):
            raise self._too_many(wait)
        try:
            return await self._authenticate(authorization)
        except APIError:
            if wait := self.failures.take(address):
                raise self._too_many(wait) from None
            raise

    def _too_many(self, wait: float) -> APIError:
        return APIError(
            429,
            "too many failed authentications from this address; retry later",
            "rate_limit_exceeded",
            headers={"Retry-After": self.failures.retry_after(wait)},
        )

    async def sign_in(self, key: str, role: Role) -> tuple[Principal, str]:
        """A page session for a valid key of at least `role`: its principal and the
        cookie's token. APIError (401, 403) otherwise."""
        principal = await self._authenticate(f"Bearer {key}")
        if ROLES[principal.role] < ROLES[role] or principal.key_id is None:
            raise APIError(403, f"this needs the {role} role", "insufficient_role")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        row = PageSession(
            id=_hash(token),
            key_id=principal.key_id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.session_ttl_s),
        )
        await asyncio.to_thread(self._store, row)
        return principal, token

    async def session(self, token: str) -> Principal | None:
        """The principal of a live page session: not expired, its key not revoked."""
        return await asyncio.to_thread(self._session, token)

    async def sign_out(self, token: str) -> None:
        await asyncio.to_thread(self._end, token)

    def _store(self, row: PageSession) -> None:
        with Session(self.db) as session:
            now = datetime.now(UTC)
            session.exec(delete(PageSession).where(col(PageSession.expires_at) < now))  # type: ignore[call-overload]
            session.add(row)
            session.commit()

    def _session(self, token: str) -> Principal | None:
        with Session(self.db) as session:
            found = session.exec(
                select(PageSession, ApiKey)
                .join(ApiKey, col(ApiKey.id) == PageSession.key_id)
                .where(PageSession.id == _hash(token), col(ApiKey.revoked).is_(False))
            ).first()
        if found is None:
            return None
        row, key = found
        return Principal(key.id, key.role) if aware(row.expires_at) > datetime.now(UTC) else None

    def _end(self, token: str) -> None:
        with Session(self.db) as session:
            session.exec(delete(PageSession).where(col(PageSession.id) == _hash(token)))  # type: ignore[call-overload]
            session.commit()

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
        principal = await auth.authenticate(
            request.headers.get("authorization"), is_local(request), _address(request)
        )
        if ROLES[principal.role] < ROLES[role]:
            raise APIError(
                403,
                f"this needs the {role} role; the key has {principal.role}",
                "insufficient_role",
            )
        limiter: RateLimiter = request.app.state.limiter
        # Per key; open mode's keyless callers are this machine's own user, not limited.
        if principal.key_id is not None and (wait := limiter.take(principal.key_id)):
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


def _address(request: Request) -> str:
    return request.client.host if request.client else "local"


def signed_in(role: Role, cookie: str) -> Callable[[Request], Awaitable[Principal | None]]:
    """A FastAPI dependency for pages: the principal of the page session in the `cookie`
    (open mode: anyone straight from this machine), or None when there is none, it has
    ended, or its role is below `role` (the page then asks the browser to sign in)."""

    async def dependency(request: Request) -> Principal | None:
        token = request.cookies.get(cookie)
        auth: Authenticator = request.app.state.auth
        principal = await auth.session(token) if token else None
        if principal is None and auth.open_access and is_local(request):
            principal = OPEN
        if principal is None:
            return None
        if ROLES[principal.role] < ROLES[role]:
            return None
        request.state.principal = principal
        return principal

    setattr(dependency, ROLE_ATTR, f"page:{role}")
    return dependency


def local_or(role: Role) -> Callable[[Request], Awaitable[Principal | None]]:
    """A FastAPI dependency for what operators read (metrics, API docs): open to requests
    straight from this machine (a scraper or health check beside the gateway), else it
    needs a key with at least `role` (a Prometheus bearer token, an operator)."""
    keyed = require(role)

    async def dependency(request: Request) -> Principal | None:
        if is_local(request) and not request.headers.get("authorization"):
            return None
        return await keyed(request)

    setattr(dependency, ROLE_ATTR, f"local-or:{role}")
    return dependency


async def may_see_details(request: Request, role: Role = "reviewer") -> bool:
    """Whether a public route may say more than up or down to this caller: a request
    straight from this machine, or a valid key with at least `role` (never an error)."""
    if is_local(request):
        return True
    auth: Authenticator = request.app.state.auth
    try:
        principal = await auth.authenticate(
            request.headers.get("authorization"), False, _address(request)
        )
    except APIError:
        return False
    return ROLES[principal.role] >= ROLES[role]


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
