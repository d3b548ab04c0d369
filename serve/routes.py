"""Gateway routes that report on the platform itself."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from serve.deps import get_engine, get_session
from serve.engine import EngineManager
from serve.protocol import HealthResponse

router = APIRouter()


@router.get("/health", response_model=HealthResponse)
def health(
    engine: Annotated[EngineManager, Depends(get_engine)],
    session: Annotated[Session, Depends(get_session)],
) -> JSONResponse:
    """200 when the engine answers and the database is reachable, else 503."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        database = "ok"
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    ok = engine.state == "ready" and database == "ok"
    body = HealthResponse(
        status="ok" if ok else "degraded", engine=engine.status(), database=database
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
