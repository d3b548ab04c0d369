"""Reading and writing stored drift reports."""

import gzip

from sqlmodel import Session, col, select

from feedback.drift.tables import DriftReport, DriftReportHtml


def save_report(session: Session, report: DriftReport, html: str | None) -> DriftReport:
    session.add(report)
    session.flush()
    if html is not None:
        assert report.id is not None
        session.add(DriftReportHtml(report_id=report.id, html_gz=gzip.compress(html.encode(), 6)))
    session.commit()
    session.refresh(report)
    return report


def list_reports(
    session: Session, alias: str | None = None, verdict: str | None = None, limit: int = 50
) -> list[DriftReport]:
    query = select(DriftReport).order_by(col(DriftReport.id).desc()).limit(limit)
    if alias:
        query = query.where(DriftReport.alias == alias)
    if verdict:
        query = query.where(DriftReport.verdict == verdict)
    return list(session.exec(query))


def report_html(session: Session, report_id: int) -> str | None:
    row = session.get(DriftReportHtml, report_id)
    return gzip.decompress(row.html_gz).decode() if row else None
