"""Admin API of rollouts: start one of an adapter version (loaded on every engine first) or
of a prompt template version, list them with every decision, abort one. The judging itself
runs in the worker."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session

from serve.adapters import AdapterRouter
from serve.auth import Principal, require
from serve.deps import get_rollouts, get_router, get_session
from serve.errors import APIError, EngineLoadError
from serve.registry import RegistryError
from serve.rollouts.controller import RolloutController, RolloutError, decisions, recent
from serve.rollouts.protocol import RolloutOut, RolloutRequest
from serve.tables import Rollout

router = APIRouter(prefix="/admin", dependencies=[Depends(require("admin"))])
Adapters = Annotated[AdapterRouter, Depends(get_router)]
Controller = Annotated[RolloutController, Depends(get_rollouts)]
DB = Annotated[Session, Depends(get_session)]


def _out(session: Session, rollout: Rollout) -> dict[str, Any]:
    assert rollout.id is not None
    return {
        **rollout.model_dump(),
        "decisions": [d.model_dump() for d in decisions(session, rollout.id)],
    }


@router.post("/aliases/{name}/rollouts", response_model=RolloutOut, status_code=201)
async def start(
    name: str,
    body: RolloutRequest,
    request: Request,
    adapters: Adapters,
    controller: Controller,
    session: DB,
) -> dict[str, Any]:
    """The candidate is loaded on every engine, then takes the first step's share."""
    principal: Principal | None = getattr(request.state, "principal", None)
    try:
        policy = controller.policy(body.model_dump(exclude={"version"}))
        version = await asyncio.to_thread(adapters.registry.version, session, name, body.version)
        session.expunge(version)
        await adapters.load_everywhere(version)

        def begin() -> dict[str, Any]:
            rollout = controller.start(
                session, name, body.version, policy, principal.key_id if principal else None
            )
            return _out(session, rollout)

        out = await asyncio.to_thread(begin)
    except (RegistryError, RolloutError) as exc:
        raise APIError(exc.status, str(exc), exc.code) from None
    except EngineLoadError as exc:
        raise APIError(exc.status, str(exc), "adapter_load_failed") from None
    await adapters.reconcile()
    return out


@router.post("/templates/{name}/rollouts", response_model=RolloutOut, status_code=201)
async def start_template(
    name: str, body: RolloutRequest, request: Request, controller: Controller, session: DB
) -> dict[str, Any]:
    """The template version takes the first step's share of the template's unpinned
    requests (gateways pick it up within the template cache's TTL)."""
    principal: Principal | None = getattr(request.state, "principal", None)

    def begin() -> dict[str, Any]:
        policy = controller.policy(body.model_dump(exclude={"version"}))
        by = principal.key_id if principal else None
        return _out(session, controller.start(session, name, body.version, policy, by, "template"))

    try:
        return await asyncio.to_thread(begin)
    except (RegistryError, RolloutError) as exc:
        raise APIError(exc.status, str(exc), exc.code) from None


@router.get("/rollouts", response_model=list[RolloutOut])
async def list_rollouts(
    session: DB,
    alias: str | None = Query(default=None, max_length=128),
    kind: str | None = Query(default=None, pattern="^(adapter|template)$"),
    limit: int = Query(default=50, ge=1, le=500),
) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        return [_out(session, r) for r in recent(session, alias, limit, kind)]

    return await asyncio.to_thread(read)


@router.post("/rollouts/{rollout_id}/abort", response_model=RolloutOut)
async def abort(
    rollout_id: int, request: Request, adapters: Adapters, controller: Controller, session: DB
) -> dict[str, Any]:
    """Stop at once: the canary share goes to 0 and production stays as it is."""
    if not 0 < rollout_id < 2**31:
        raise APIError(404, f"rollout {rollout_id} does not exist", "not_found")
    principal: Principal | None = getattr(request.state, "principal", None)

    def stop() -> dict[str, Any]:
        rollout = controller.abort(session, rollout_id, principal.key_id if principal else None)
        return _out(session, rollout)

    try:
        out = await asyncio.to_thread(stop)
    except (RolloutError, RegistryError) as exc:
        raise APIError(exc.status, str(exc), exc.code) from None
    await adapters.reconcile()
    return out
