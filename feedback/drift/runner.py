"""A drift run: windows → sample → embeddings → Evidently → verdict → decision → stored.

`feedback` knows nothing of the adapter registry, so what only the registry knows (the
production version's training rows, when it was created) comes in as arguments.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from feedback.drift.embeddings import Embedder
from feedback.drift.frames import (
    Window,
    count_reviews_since,
    last_n_start,
    load_frame,
    sample,
    window_ids,
)
from feedback.drift.policy import decide, send_alert
from feedback.drift.report import run_report
from feedback.drift.settings import DriftSettings
from feedback.drift.store import prune_reports, save_report
from feedback.drift.tables import DriftReport
from feedback.models import utcnow

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # stage, done, total
RetrainHook = Callable[[DriftReport], str]


class DriftRunner:
    def __init__(
        self,
        db: Engine,
        settings: DriftSettings,
        embedder: Embedder | None = None,
        on_retrain: RetrainHook | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding_model)
        self.on_retrain = on_retrain

    def windows(
        self, session: Session, alias: str, template: str | None, training_ids: Sequence[str] | None
    ) -> tuple[Window, Window]:
        s, now = self.settings, utcnow()
        if s.current_rows:
            start = last_n_start(session, alias, template, s.current_rows)
            current = Window(alias, template, start=start or now, end=now)
        else:
            current = Window(alias, template, start=now - timedelta(hours=s.current_hours), end=now)
        assert current.start is not None
        if s.reference == "fixed":
            reference = Window(alias, template, start=s.reference_from, end=s.reference_to)
        elif s.reference == "training":
            reference = Window(alias, template, ids=tuple(training_ids or ()))
        else:
            start = current.start - timedelta(hours=s.reference_hours)
            reference = Window(alias, template, start=start, end=current.start)
        return reference, current

    def run(
        self,
        alias: str,
        template: str | None = None,
        trigger: str = "manual",
        training_ids: Sequence[str] | None = None,
        version_since: datetime | None = None,
        progress: Progress | None = None,
    ) -> DriftReport:
        s, began = self.settings, time.perf_counter()
        step = progress or (lambda stage, done, total: None)
        with Session(self.db) as session:
            reference, current = self.windows(session, alias, template, training_ids)
            step("windows", 0, 1)
            ref_ids, cur_ids = window_ids(session, reference), window_ids(session, current)
            step("windows", 1, 1)
            report = DriftReport(
                alias=alias,
                template=template,
                reference_kind=s.reference,
                reference_from=reference.start,
                reference_to=reference.end,
                current_from=current.start,
                current_to=current.end,
                reference_rows=len(ref_ids),
                current_rows=len(cur_ids),
                trigger=trigger,
                verdict="not_enough_data",
            )
            if min(len(ref_ids), len(cur_ids)) < s.min_rows:
                report.reason = self._too_little(len(ref_ids), len(cur_ids), training_ids)
                report.decision = asdict(decide(report.verdict, 0.0, 0, s))
                report.duration_s = time.perf_counter() - began
                return self._save(session, report, None)
            ref = load_frame(session, sample(ref_ids, s.sample_rows, s.seed))
            cur = load_frame(session, sample(cur_ids, s.sample_rows, s.seed + 1))
            new_reviews = count_reviews_since(session, alias, version_since)
            step("load", 1, 1)
        total = len(ref) + len(cur)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            step("embeddings", done, total)

        ref_emb = self.embedder.encode(ref["prompt"].tolist(), advance)
        cur_emb = self.embedder.encode(cur["prompt"].tolist(), advance)
        step("evidently", 0, 1)
        outcome = run_report(ref, cur, ref_emb, cur_emb, s)
        step("evidently", 1, 1)
        report.verdict, report.reason = outcome.verdict, outcome.reason
        report.drift_share, report.drifted_columns = outcome.drift_share, outcome.drifted
        report.columns, report.evidently = outcome.columns, outcome.evidently
        decision = decide(outcome.verdict, outcome.drift_share, new_reviews, s)
        report.decision = asdict(decision)
        report.duration_s = time.perf_counter() - began
        with Session(self.db) as session:
            report = self._save(session, report, outcome.html)
            if decision.alert:
                report.decision = {**report.decision, **send_alert(s, self._alert(report))}
            if decision.retrain:
                report.decision = {**report.decision, "retrain_job": self._request_retrain(report)}
            session.add(report)
            session.commit()
            session.refresh(report)
        return report

    def _save(self, session: Session, report: DriftReport, html: str | None) -> DriftReport:
        """Store the report, then prune what is past retention (every run keeps it bounded)."""
        saved = save_report(session, report, html)
        s = self.settings
        reports, pages = prune_reports(session, s.keep_days, s.keep_html_days)
        if reports or pages:
            log.info("drift retention: deleted %d old reports and %d old pages", reports, pages)
        session.refresh(saved)
        return saved

    def _too_little(self, ref: int, cur: int, training_ids: Sequence[str] | None) -> str:
        if self.settings.reference == "training" and not training_ids:
            return "not enough data: the production version records no training rows"
        return (
            f"not enough data: reference has {ref} rows, current {cur}; "
            f"need {self.settings.min_rows} in each"
        )

    def _alert(self, report: DriftReport) -> dict[str, object]:
        return {
            "alias": report.alias,
            "template": report.template,
            "report_id": report.id,
            "verdict": report.verdict,
            "drift_share": report.drift_share,
            "reason": report.reason,
            "retrain": report.decision.get("retrain"),
        }

    def _request_retrain(self, report: DriftReport) -> str:
        if self.on_retrain is None:
            log.warning("drift on %s asks for retraining; no retrain job is set up", report.alias)
            return "not configured"
        try:
            return self.on_retrain(report)
        except Exception as exc:  # the report stands even if scheduling the retrain fails
            log.exception("could not request retraining for %s", report.alias)
            return f"failed: {exc}"
