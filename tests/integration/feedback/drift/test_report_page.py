"""A hostile prompt in the traffic cannot run script on the gateway's origin through
Evidently's report page: Evidently embeds its data in a <script> with json.dumps, which
leaves `</script>` as it is; the gateway shows the page with that data made inert."""

from collections.abc import Callable

import httpx
import pandas as pd
from playwright.sync_api import Browser
from sqlalchemy import create_engine
from sqlmodel import Session

from feedback.drift.store import save_report
from feedback.drift.tables import DriftReport
from loraloop.settings import Settings
from tests.utils.browser import shot

HOSTILE = "</script><script>window.pwned = 1</script>"


def evidently_page_with(text: str) -> str:
    """A real Evidently report whose data holds `text` (as a drifted column's values)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(categorical_columns=["prompt_kind"])
    current = pd.DataFrame({"prompt_kind": [text] * 40 + ["refund"] * 10})
    reference = pd.DataFrame({"prompt_kind": ["invoice"] * 40 + ["refund"] * 10})
    snapshot = Report([ValueDrift(column="prompt_kind")]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return str(snapshot.get_html_str(as_iframe=False))


def test_hostile_prompt_in_a_drift_report_does_not_run(
    migrated_db: str, make_live_gateway: Callable[..., Settings], browser: Browser
) -> None:
    html = evidently_page_with(HOSTILE)
    assert "<script>window.pwned" in html, "Evidently's page carries the text raw"
    settings = make_live_gateway(migrated_db)
    db = create_engine(migrated_db)
    with Session(db) as session:
        report = save_report(
            session, DriftReport(alias="support", reference_kind="previous", verdict="drift"), html
        )
    db.dispose()
    base = f"http://127.0.0.1:{settings.serve.port}"
    page = browser.new_page()
    try:
        for path in (f"/ops/drift/{report.id}", f"/v1/drift/reports/{report.id}.html"):
            served = httpx.get(f"{base}{path}")
            assert served.status_code == 200
            assert "frame-ancestors 'none'" in served.headers["content-security-policy"]
            assert served.headers["x-content-type-options"] == "nosniff"
            assert "<script>window.pwned" not in served.text
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.pwned") is None, f"{path}: the hostile script ran"
            # The report itself still renders, its data intact (the text is shown as text).
            page.wait_for_function("document.body.innerText.includes('prompt_kind')")
        shot(page, "drift-report-hostile-prompt.png")
    finally:
        page.close()
