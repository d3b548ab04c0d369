"""Shapes of the drift API."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ColumnResult(BaseModel):
    column: str
    kind: str
    status: str  # judged, skipped
    method: str | None = None
    threshold: float | None = None
    score: float | None = None
    drifted: bool = False
    reason: str | None = None


class DriftReportSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    alias: str
    template: str | None
    trigger: str
    reference_kind: str
    reference_from: datetime | None
    reference_to: datetime | None
    current_from: datetime | None
    current_to: datetime | None
    reference_rows: int
    current_rows: int
    drift_share: float | None
    drifted_columns: int
    verdict: str
    reason: str
    decision: dict[str, Any]
    duration_s: float
    html_url: str = ""


class DriftReportDetail(DriftReportSummary):
    columns: list[ColumnResult]
    evidently: dict[str, Any] | None = Field(None, description="Evidently's JSON snapshot.")


class DriftReportList(BaseModel):
    object: str = "list"
    data: list[DriftReportSummary]


class DriftRunRequest(BaseModel):
    alias: str = Field(min_length=1, max_length=128)
    template: str | None = Field(None, max_length=128)
