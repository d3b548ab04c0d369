"""Real Evidently on synthetic traffic with planted shifts: each must be found, and traffic
without a shift must not be flagged."""

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from feedback.drift import DriftReport, DriftRunner, DriftSettings, Embedder
from feedback.drift.store import report_html
from feedback.models import utcnow
from loraloop import db
from tests.utils.traffic import insert_traffic, rows

N = 300


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def traffic_db(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    db.upgrade(url)
    engine = db.create_db_engine(url)
    yield engine
    engine.dispose()


def plant(engine: Engine, **shift: Any) -> None:
    """A week of reference traffic, then the last day's, shifted as asked."""
    now = utcnow()
    score = shift.pop("score_mean", 4.2)
    ref, ref_reviews = rows(
        N, now - timedelta(days=7), now - timedelta(days=1), seed=1, score_mean=4.2
    )
    # Seed 4: without a planted shift, one column (of nine) drifts by chance, not two.
    cur, cur_reviews = rows(N, now - timedelta(hours=23), now, seed=4, score_mean=score, **shift)
    insert_traffic(engine, ref + cur, ref_reviews + cur_reviews)


def run(engine: Engine, embedder: Embedder, **settings: Any) -> DriftReport:
    return DriftRunner(engine, DriftSettings(**settings), embedder).run("support")


def judged(report: DriftReport) -> dict[str, bool]:
    return {c["column"]: c["drifted"] for c in report.columns if c["status"] == "judged"}


def test_no_shift_is_not_flagged(traffic_db: Engine, embedder: Embedder) -> None:
    plant(traffic_db)
    report = run(traffic_db, embedder)
    assert report.verdict == "no_drift", report.reason
    assert report.reference_rows == N and report.current_rows == N
    assert not judged(report)["prompt_embedding"]
    assert not judged(report)["prompt"]
    assert report.decision["retrain"] is False


def test_new_topic_is_found_in_text_and_embeddings(traffic_db: Engine, embedder: Embedder) -> None:
    plant(traffic_db, new_topic=0.4)
    report = run(traffic_db, embedder)
    assert report.verdict == "drift", report.reason
    drifted = judged(report)
    assert drifted["prompt_embedding"] and drifted["prompt"]
    with Session(traffic_db) as session:
        html = report_html(session, report.id)  # type: ignore[arg-type]
    assert html is not None and "<html" in html and "prompt_chars" in html
    assert report.evidently is not None and report.evidently["metrics"]


def test_longer_prompts_are_found(traffic_db: Engine, embedder: Embedder) -> None:
    plant(traffic_db, long_prompts=True)
    report = run(traffic_db, embedder)
    assert report.verdict == "drift"
    assert judged(report)["prompt_chars"] and judged(report)["prompt_tokens"]


def test_a_drop_in_review_scores_is_found(traffic_db: Engine, embedder: Embedder) -> None:
    plant(traffic_db, score_mean=2.0)
    report = run(traffic_db, embedder, drift_share=0.1)
    drifted = judged(report)
    assert drifted["review_score"]
    assert not drifted["prompt_embedding"]
    assert report.verdict == "drift"


def test_too_little_data_is_not_a_false_alarm(traffic_db: Engine, embedder: Embedder) -> None:
    now = utcnow()
    insert_traffic(traffic_db, rows(N, now - timedelta(days=7), now - timedelta(days=1))[0])
    insert_traffic(traffic_db, rows(20, now - timedelta(hours=2), now, seed=5, new_topic=1.0)[0])
    report = run(traffic_db, embedder)
    assert report.verdict == "not_enough_data"
    assert "reference has 300 rows, current 20" in report.reason
    assert report.decision["retrain"] is False and report.decision["alert"] is False


def test_last_n_current_window_and_training_reference(
    traffic_db: Engine, embedder: Embedder
) -> None:
    now = utcnow()
    train, _ = rows(N, now - timedelta(days=30), now - timedelta(days=20), seed=7)
    insert_traffic(traffic_db, train)
    plant(traffic_db, new_topic=0.5)
    runner = DriftRunner(traffic_db, DriftSettings(reference="training", current_rows=N), embedder)
    report = runner.run("support", training_ids=[r["id"] for r in train])
    assert report.reference_rows == N and report.current_rows == N
    assert report.verdict == "drift"
    missing = runner.run("support", training_ids=None)
    assert missing.verdict == "not_enough_data" and "no training rows" in missing.reason


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_drift_requests_retraining_and_posts_the_alert(
    traffic_db: Engine, embedder: Embedder
) -> None:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plant(traffic_db, new_topic=0.6, long_prompts=True)
    asked: list[int] = []
    settings = DriftSettings(
        alert_webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
        retrain_min_share=0.3,
        retrain_min_new_reviews=N,
    )

    def retrain(report: DriftReport) -> str:
        asked.append(report.id)  # type: ignore[arg-type]
        return "scheduled"

    report = DriftRunner(traffic_db, settings, embedder, on_retrain=retrain).run("support")
    server.shutdown()
    assert report.verdict == "drift"
    assert report.decision["retrain"] is True and report.decision["retrain_job"] == "scheduled"
    assert asked == [report.id]
    assert report.decision["webhook"] == 204
    assert Hook.received[-1]["alias"] == "support" and Hook.received[-1]["report_id"] == report.id

    stingy = DriftSettings(retrain_min_share=0.3, retrain_min_new_reviews=10 * N)
    again = DriftRunner(traffic_db, stingy, embedder, on_retrain=retrain).run("support")
    assert again.verdict == "drift" and again.decision["retrain"] is False
    assert f"only {2 * N} reviewed interactions" in again.decision["reason"]
