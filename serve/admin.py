"""Admin API: register adapter versions, promote, canary, roll back, list.

The endpoints are async (they await engines); every database call in them runs in a
worker thread, so the event loop that serves inference never waits on the database.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from sqlmodel import Session

from serve.adapters import AdapterRouter
from serve.auth import require
from serve.deps import get_router, get_session
from serve.errors import APIError, EngineLoadError
from serve.paging import Window, describe, page, window
from serve.protocol import (
    AdapterVersionOut,
    AliasOut,
    CanaryRequest,
    PromoteRequest,
    RegisterAdapterRequest,
    ShadowRequest,
)
from serve.registry import RegistryError
from serve.tables import AdapterVersion, Alias

router = APIRouter(prefix="/admin", dependencies=[Depends(require("admin"))])
Adapters = Annotated[AdapterRouter, Depends(get_router)]
DB = Annotated[Session, Depends(get_session)]
Asked = Annotated[Window, Depends(window)]
T = TypeVar("T")


def _status(version: AdapterVersion, aliases: dict[str, Alias]) -> str:
    alias = aliases.get(version.name)
    if alias is not None and alias.production_version == version.version:
        return "production"
    if alias is not None and alias.canary_version == version.version:
        return f"canary ({alias.canary_share:.0%})"
    return "registered"


def _out(version: AdapterVersion, aliases: dict[str, Alias]) -> AdapterVersionOut:
    return AdapterVersionOut(**version.model_dump(), status=_status(version, aliases))


@router.get("/adapters", response_model=list[AdapterVersionOut])
async def list_adapters(
    adapters: Adapters, asked: Asked, request: Request, response: Response
) -> list[AdapterVersionOut]:
    """Versions by alias and number, `limit` (at most 1,000) from `offset`; `name` filters."""
    await adapters.reconcile()
    versions = sorted(adapters.versions.values(), key=lambda v: (v.name, v.version))
    found = page(versions, lambda v: v.name, asked)
    return [_out(v, adapters.aliases) for v in describe(response, request, found)]


@router.post("/adapters", response_model=AdapterVersionOut, status_code=201)
async def register(
    body: RegisterAdapterRequest, adapters: Adapters, session: DB
) -> AdapterVersionOut:
    """Register a new version and load it on every engine (it serves as `name@N` at once)."""
    path = Path(body.path)
    if not path.is_absolute():
        path = adapters.registry.store / path
    try:
        version = await asyncio.to_thread(
            _detached,
            session,
            lambda: adapters.registry.register(
                session,
                body.name,
                path,
                base_model=body.base_model,
                metrics=body.metrics,
                lineage=body.lineage,
            ),
        )
        await adapters.load_everywhere(version)
    except RegistryError as exc:
        raise APIError(exc.status, str(exc), exc.code, "path") from None
    except EngineLoadError as exc:
        message = f"{version.ref} is registered, but not loaded on every engine: {exc}"
        raise APIError(exc.status, message, "adapter_load_failed", "path") from None
    return _out(version, adapters.aliases)


@router.post("/aliases/{name}/promote", response_model=AliasOut)
async def promote(name: str, body: PromoteRequest, adapters: Adapters, session: DB) -> Alias:
    """Load everywhere first; switch only when every engine has it."""
    return await _change(
        adapters,
        session,
        name,
        body.version,
        lambda: adapters.registry.promote(session, name, body.version),
    )


@router.post("/aliases/{name}/canary", response_model=AliasOut)
async def canary(name: str, body: CanaryRequest, adapters: Adapters, session: DB) -> Alias:
    return await _change(
        adapters,
        session,
        name,
        body.version,
        lambda: adapters.registry.set_canary(session, name, body.version, body.share),
    )


@router.post("/aliases/{name}/shadow", response_model=AliasOut)
async def shadow(name: str, body: ShadowRequest, adapters: Adapters, session: DB) -> Alias:
    """Shadow production with VERSION: its answers are captured beside production's."""
    return await _change(
        adapters,
        session,
        name,
        body.version,
        lambda: adapters.registry.set_shadow(session, name, body.version, body.share),
    )


@router.post("/aliases/{name}/rollback", response_model=AliasOut)
async def rollback(name: str, adapters: Adapters, session: DB) -> Alias:
    alias = await asyncio.to_thread(adapters.registry.alias, session, name)
    target = alias.previous_version if alias is not None else None
    return await _change(
        adapters, session, name, target, lambda: adapters.registry.rollback(session, name)
    )


@router.get("/aliases", response_model=list[AliasOut])
async def list_aliases(
    adapters: Adapters, asked: Asked, request: Request, response: Response
) -> list[Alias]:
    """Aliases by name, `limit` (at most 1,000) from `offset`; `name` filters."""
    await adapters.reconcile()
    aliases = sorted(adapters.aliases.values(), key=lambda a: a.name)
    return describe(response, request, page(aliases, lambda a: a.name, asked))


def _detached(session: Session, read: Callable[[], T]) -> T:
    """Run a registry call and detach its row, so it can be used after the session."""
    row = read()
    session.expunge(row)
    return row


async def _change(
    adapters: AdapterRouter,
    session: Session,
    name: str,
    number: int | None,
    change: Callable[[], Alias],
) -> Alias:
    """Load the target version everywhere first; switch only when every engine has it."""
    try:
        if number is not None:
            version = await asyncio.to_thread(
                _detached, session, lambda: adapters.registry.version(session, name, number)
            )
            await adapters.load_everywhere(version)
        alias = await asyncio.to_thread(change)
    except RegistryError as exc:
        raise APIError(exc.status, str(exc), exc.code) from None
    except EngineLoadError as exc:
        raise APIError(exc.status, str(exc), "adapter_load_failed") from None
    await adapters.reconcile()
    return alias
