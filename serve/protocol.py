"""Response shapes of the gateway's own (non-OpenAI) endpoints."""

from typing import Any, Literal

from pydantic import BaseModel


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    engine: dict[str, Any]
    database: str
