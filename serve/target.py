"""What one request resolves to, and the draw that keeps one user on one version."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """Where one request goes: the engine's model name and what it stands for."""

    engine_model: str
    alias: str | None = None
    version: int | None = None
    pinned: bool = False  # asked for as `alias@N`, not through the alias's split


def bucket(alias: str, canary: int, sticky: str) -> float:
    """A uniform number in [0, 1) fixed for one id and one canary version."""
    digest = hashlib.sha256(f"{alias}\0{canary}\0{sticky}".encode()).digest()
    return int.from_bytes(digest[:8]) / 2**64


def sticky_id(body: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    """Who the request is for: OpenAI's `user` field, else an X-Session-Id header."""
    user = body.get("user")
    if isinstance(user, str) and user:
        return user
    return headers.get("x-session-id") or None
