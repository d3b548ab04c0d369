"""FastAPI dependencies of the online path: what the app factory put on app.state."""

from collections.abc import Iterator

from fastapi import Request
from sqlmodel import Session

from feedback.api import get_capture
from serve.adapters import AdapterRouter
from serve.engine import EngineManager
from serve.proxy import Proxy
from serve.ratelimit import RateLimiter
from serve.replicas import ReplicaPool
from serve.rollouts import RolloutController

__all__ = [
    "get_capture",
    "get_engine",
    "get_limiter",
    "get_proxy",
    "get_replicas",
    "get_rollouts",
    "get_router",
    "get_session",
]


def get_engine(request: Request) -> EngineManager:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    yield from request.app.state.sessions()


def get_router(request: Request) -> AdapterRouter:
    return request.app.state.router  # type: ignore[no-any-return]


def get_replicas(request: Request) -> ReplicaPool:
    return request.app.state.replicas  # type: ignore[no-any-return]


def get_proxy(request: Request) -> Proxy:
    return request.app.state.proxy  # type: ignore[no-any-return]


def get_rollouts(request: Request) -> RolloutController:
    return request.app.state.rollouts  # type: ignore[no-any-return]


def get_limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter  # type: ignore[no-any-return]
