"""Stored drift reports. The Evidently HTML (megabytes, mostly its bundled JS) lives gzipped
in its own table so that listing reports never loads it."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from feedback.models import utcnow


class DriftReport(SQLModel, table=True):
    __tablename__ = "drift_report"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    alias: str = Field(max_length=128, index=True)
    template: str | None = Field(default=None, max_length=128)
    reference_kind: str = Field(max_length=16)
    reference_from: datetime | None = None
    reference_to: datetime | None = None
    current_from: datetime | None = None
    current_to: datetime | None = None
    reference_rows: int = 0
    current_rows: int = 0
    drift_share: float | None = None
    drifted_columns: int = 0
    columns: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    verdict: str = Field(max_length=16, index=True)  # drift, no_drift, not_enough_data, failed
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    decision: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    evidently: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    duration_s: float = 0.0
    trigger: str = Field(default="manual", max_length=16)


class DriftReportHtml(SQLModel, table=True):
    __tablename__ = "drift_report_html"

    report_id: int = Field(foreign_key="drift_report.id", primary_key=True)
    html_gz: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
