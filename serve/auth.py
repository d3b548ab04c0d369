"""API keys with roles. Keys are stored as SHA-256 hashes of a random secret.

A key reads `ll-<id>-<secret>`: the id finds the row, the secret is compared by hash.
The embedded default may run open (no keys) on a loopback address only; every caller
is then treated as admin, and the gateway says so at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from sqlalchemy import Engine
from sqlmodel import Session

from serve.errors import APIError
from serve.tables import ApiKey

Role = Literal["client", "reviewer", "admin"]
ROLES: dict[str, int] = {"client": 1, "reviewer": 2, "admin": 3}
CACHE_TTL_S = 30.0


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


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


OPEN = Principal(None, "admin")


class Authenticator:
    """Checks bearer keys against the database, with a short cache of verified keys."""

    def __init__(self, db: Engine, open_access: bool) -> None:
        self.db = db
        self.open_access = open_access
        self._cache: dict[str, tuple[float, Principal | None]] = {}

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
        if cached is not None and time.monotonic() - cached[0] < CACHE_TTL_S:
            principal = cached[1]
        else:
            principal = await asyncio.to_thread(self._lookup, key)
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


def require(role: Role):  # type: ignore[no-untyped-def]
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
        request.state.principal = principal
        return principal

    return dependency
