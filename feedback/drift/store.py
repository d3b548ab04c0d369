"""Reading and writing stored drift reports, and pruning them by age.

Evidently's HTML is most of a report's size (megabytes, gzipped to some hundred KB), so
it has a shorter retention than the summary row, which the ops page and the trend need.
"""

import gzip
import re
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, func, select

from feedback.drift.tables import DriftReport, DriftReportHtml
from feedback.models import utcnow


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


def latest_reports(session: Session) -> dict[str, DriftReport]:
    """Each alias's newest report (every alias that has one)."""
    newest = select(func.max(DriftReport.id)).group_by(col(DriftReport.alias))
    rows = session.exec(select(DriftReport).where(col(DriftReport.id).in_(newest)))
    return {r.alias: r for r in rows}


# Evidently embeds a report's data as `var metric_<id> = <json>;` lines inside a <script>,
# written by json.dumps, which leaves `</script>` in a string as it is: a prompt holding
# one would end the script and run its own on the gateway's origin. JSON has no `<` outside
# strings, and no raw newline inside them, so on those lines every `<` is in a string and
# `\u003c` is the same string to JavaScript.
DATA_LINE = re.compile(r"^([ \t]*var (?:additional_graphs_)?metric_[0-9a-f]{32} = )(.*)$", re.M)


def inert_script_data(html: str) -> str:
    """Evidently's page with its embedded data unable to close the <script> it is in."""
    return DATA_LINE.sub(lambda m: m.group(1) + m.group(2).replace("<", "\\u003c"), html)


def report_html(session: Session, report_id: int) -> str | None:
    """The report's Evidently page, made safe to show on the gateway's origin (reports
    stored before this was done are made safe here too)."""
    row = session.get(DriftReportHtml, report_id)
    return inert_script_data(gzip.decompress(row.html_gz).decode()) if row else None


def prune_reports(session: Session, keep_days: float, keep_html_days: float) -> tuple[int, int]:
    """Delete reports older than `keep_days`, and the HTML of those older than
    `keep_html_days`; returns (reports, pages) deleted."""
    now = utcnow()
    old = select(DriftReport.id).where(col(DriftReport.created_at) < now - timedelta(keep_days))
    html_old = select(DriftReport.id).where(
        col(DriftReport.created_at) < now - timedelta(min(keep_days, keep_html_days))
    )
    pages = session.exec(  # type: ignore[call-overload]
        delete(DriftReportHtml).where(col(DriftReportHtml.report_id).in_(html_old))
    ).rowcount
    reports = session.exec(  # type: ignore[call-overload]
        delete(DriftReport).where(col(DriftReport.id).in_(old))
    ).rowcount
    session.commit()
    return reports, pages
