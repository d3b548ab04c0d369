"""Gateway routes that report on the platform itself: health for anyone (details for
this machine and reviewer keys), the API's schema and docs for this machine and keys."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from feedback.capture import CaptureWriter
from serve.auth import local_or, may_see_details, public
from serve.deps import get_capture, get_engine, get_limiter, get_replicas, get_session
from serve.engine import EngineManager
from serve.protocol import HealthResponse
from serve.ratelimit import RateLimiter
from serve.replicas import ReplicaPool

router = APIRouter()


@router.get("/health", response_model=HealthResponse, dependencies=[Depends(public())])
def health(
    details: Annotated[bool, Depends(may_see_details)],
    engine: Annotated[EngineManager, Depends(get_engine)],
    replicas: Annotated[ReplicaPool, Depends(get_replicas)],
    session: Annotated[Session, Depends(get_session)],
    capture: Annotated[CaptureWriter, Depends(get_capture)],
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
) -> JSONResponse:
    """200 when at least one engine replica is in rotation and the database answers, else
    503; `status` is `degraded` while some replica is out or the capture spool cannot be
    written (requests are still answered then). Anyone may ask; only a request from this
    machine or with a reviewer key is told why (replicas, errors, paths, limits)."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        database = "ok"
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    up = replicas.healthy()
    serving = engine.state == "ready" and bool(up) and database == "ok"
    whole = serving and len(up) == len(replicas.urls) and capture.spool_error is None
    status = "ok" if whole else "degraded"
    code = 200 if serving else 503
    if not details:
        return JSONResponse({"status": status}, status_code=code)
    body = HealthResponse(
        status=status,
        engine=engine.status(),
        replicas=replicas.status(),
        database=database,
        capture={
            "queued": capture.depth,
            "spooled": capture.spooled,
            "held": capture.held,
            "quarantined": capture.quarantined,
            "dropped": capture.dropped,
            "error": capture.spool_error,
        },
        rate_limit=limiter.describe(),
    )
    return JSONResponse(body.model_dump(), status_code=code)


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(local_or("reviewer"))])
def openapi(request: Request) -> JSONResponse:
    """The API's schema: for this machine and reviewer keys (it maps every admin route)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[Depends(local_or("reviewer"))])
def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="loraloop API")
