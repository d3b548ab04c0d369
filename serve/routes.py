"""Gateway routes that report on the platform itself."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from feedback.capture import CaptureWriter
from serve.auth import public
from serve.deps import get_capture, get_engine, get_replicas, get_session
from serve.engine import EngineManager
from serve.protocol import HealthResponse
from serve.replicas import ReplicaPool

router = APIRouter()


@router.get("/health", response_model=HealthResponse, dependencies=[Depends(public())])
def health(
    engine: Annotated[EngineManager, Depends(get_engine)],
    replicas: Annotated[ReplicaPool, Depends(get_replicas)],
    session: Annotated[Session, Depends(get_session)],
    capture: Annotated[CaptureWriter, Depends(get_capture)],
) -> JSONResponse:
    """200 when at least one engine replica is in rotation and the database answers, else
    503; `status` is `degraded` while some replica is out or the capture spool cannot be
    written (requests are still answered then). Each replica is listed."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        database = "ok"
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    up = replicas.healthy()
    serving = engine.state == "ready" and bool(up) and database == "ok"
    whole = serving and len(up) == len(replicas.urls) and capture.spool_error is None
    body = HealthResponse(
        status="ok" if whole else "degraded",
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
    )
    return JSONResponse(body.model_dump(), status_code=200 if serving else 503)
