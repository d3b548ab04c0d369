"""Gateway routes that report on the platform itself."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from serve.auth import public
from serve.deps import get_engine, get_replicas, get_session
from serve.engine import EngineManager
from serve.protocol import HealthResponse
from serve.replicas import ReplicaPool

router = APIRouter()


@router.get("/health", response_model=HealthResponse, dependencies=[Depends(public())])
def health(
    engine: Annotated[EngineManager, Depends(get_engine)],
    replicas: Annotated[ReplicaPool, Depends(get_replicas)],
    session: Annotated[Session, Depends(get_session)],
) -> JSONResponse:
    """200 when at least one engine replica is in rotation and the database answers, else
    503; `status` is `degraded` while some replica is out. Each replica is listed."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        database = "ok"
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    up = replicas.healthy()
    serving = engine.state == "ready" and bool(up) and database == "ok"
    body = HealthResponse(
        status="ok" if serving and len(up) == len(replicas.urls) else "degraded",
        engine=engine.status(),
        replicas=replicas.status(),
        database=database,
    )
    return JSONResponse(body.model_dump(), status_code=200 if serving else 503)
