"""Drift report retention: each run prunes reports past `keep_days` and pages past
`keep_html_days`, through the runner that stores reports."""

from datetime import timedelta

from sqlmodel import Session, select

from feedback.drift import DriftRunner, DriftSettings
from feedback.drift.store import report_html, save_report
from feedback.drift.tables import DriftReport
from feedback.models import utcnow
from loraloop import db


def test_a_run_prunes_old_reports_and_older_pages(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    now = utcnow()
    ids = {}
    with Session(engine) as session:
        for days in (400, 40, 1):
            report = DriftReport(
                created_at=now - timedelta(days=days),
                alias="support",
                reference_kind="previous",
                verdict="no_drift",
            )
            ids[days] = save_report(session, report, f"<html>{days} days</html>").id

    DriftRunner(engine, DriftSettings(keep_days=365, keep_html_days=30)).run("nobody")

    with Session(engine) as session:
        kept = {r.id for r in session.exec(select(DriftReport))}
        assert ids[400] not in kept, "past keep_days: gone, page and all"
        assert {ids[40], ids[1]} <= kept and len(kept) == 3, "the new report is kept too"
        assert report_html(session, ids[400]) is None
        assert report_html(session, ids[40]) is None, "past keep_html_days: the page goes"
        assert report_html(session, ids[1]) == "<html>1 days</html>"
    engine.dispose()
