"""Drift API: list stored reports, read one (record, or Evidently's HTML page), run one now."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from feedback.api import get_session
from feedback.drift.protocol import (
    DriftReportDetail,
    DriftReportList,
    DriftReportSummary,
    DriftRunRequest,
)
from feedback.drift.store import list_reports, report_html
from feedback.drift.tables import DriftReport
from feedback.jobs import JobBusy
from feedback.pages import secured

RunNow = Callable[[str, str | None], DriftReport]
Verdict = Literal["drift", "no_drift", "not_enough_data"]


def _summary(report: DriftReport, model: type[DriftReportSummary]) -> Any:
    out = model.model_validate(report)
    out.html_url = f"/v1/drift/reports/{report.id}.html"
    return out


def build_router(require: Callable[[str], Callable[..., Any]], run_now: RunNow) -> APIRouter:
    router = APIRouter(tags=["drift"])
    DB = Annotated[Session, Depends(get_session)]
    reader = [Depends(require("reviewer"))]

    @router.get("/v1/drift/reports", response_model=DriftReportList, dependencies=reader)
    def reports(
        session: DB,
        alias: str | None = None,
        verdict: Verdict | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> DriftReportList:
        rows = list_reports(session, alias, verdict, limit)
        return DriftReportList(data=[_summary(r, DriftReportSummary) for r in rows])

    @router.get(  # errors stay JSON: only the 200 is a page
        "/v1/drift/reports/{report_id}.html",
        dependencies=reader,
        responses={200: {"content": {"text/html": {}}, "description": "Evidently's page"}},
    )
    def report_page(report_id: int, session: DB) -> HTMLResponse:
        """Evidently's own report page, with the pages' security headers."""
        html = report_html(session, report_id)
        if html is None:
            raise HTTPException(404, f"drift report {report_id} has no page")
        return secured(HTMLResponse(html))  # type: ignore[return-value]

    @router.get(
        "/v1/drift/reports/{report_id}", response_model=DriftReportDetail, dependencies=reader
    )
    def report(report_id: int, session: DB) -> DriftReportDetail:
        row = session.get(DriftReport, report_id)
        if row is None:
            raise HTTPException(404, f"drift report {report_id} does not exist")
        return _summary(row, DriftReportDetail)

    @router.post(
        "/v1/drift/run",
        response_model=DriftReportSummary,
        status_code=201,
        dependencies=[Depends(require("admin"))],
    )
    def run(body: DriftRunRequest) -> DriftReportSummary:
        """Run a report now (seconds to a minute); 409 while one runs for the alias."""
        try:
            report = run_now(body.alias, body.template)
        except JobBusy as exc:
            raise HTTPException(409, str(exc)) from exc
        return _summary(report, DriftReportSummary)

    return router
