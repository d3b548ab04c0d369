"""The operator's console in headless Chromium: overview, drift history, retraining runs
(with the diff view) and adapters, where an admin promotes then rolls back through the
page (confirmation, CSRF) and a reviewer sees everything but cannot act.

Screenshots go to test-results/screenshots/console-*.png."""

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session

from feedback.drift.store import save_report
from feedback.drift.tables import DriftReport
from feedback.jobs import JobRun
from loraloop import db
from loraloop.settings import Settings
from retrain.report import loss_curve_svg
from serve.auth import create_key
from serve.template_releases import TemplateReleases
from serve.templates import TemplateSpec
from tests.utils.adapters import make_adapter_dir
from tests.utils.browser import shot


@pytest.fixture
def console(
    sqlite_url: str, make_live_gateway: Callable[..., Settings]
) -> Iterator[dict[str, str]]:
    settings = make_live_gateway(sqlite_url, require_keys=True)
    base = f"http://127.0.0.1:{settings.serve.port}"
    engine = db.create_db_engine(sqlite_url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        keys = {role: create_key(session, role) for role in ("client", "reviewer", "admin")}
        for i, (share, verdict) in enumerate(
            [(0.1, "no_drift"), (0.6, "drift"), (0.2, "no_drift")]
        ):
            report = DriftReport(
                created_at=now - timedelta(hours=3 - i), alias="support", reference_kind="window",
                reference_rows=80, current_rows=60, drift_share=share, verdict=verdict,
                drifted_columns=1 if verdict == "drift" else 0, reason=f"{share:.0%} drifted",
                columns=[{"column": "prompt_length", "drifted": verdict == "drift"}],
                decision={"alert": verdict == "drift"},
            )  # fmt: skip
            save_report(session, report, "<html><body>evidently report</body></html>")
        shop = DriftReport(alias="shop", reference_kind="window", drift_share=0.7, verdict="drift",
                           reason="70% drifted", columns=[], decision={})  # fmt: skip
        save_report(session, shop, None)
        session.add(JobRun(job="retrain", target="support", trigger="drift", status="succeeded",
                           result="run-1: promoted support@2", finished_at=now))  # fmt: skip
        session.commit()
        # a run's prompt: a template version that serves only through its rollout
        releases = TemplateReleases()
        spec = TemplateSpec.model_validate(releases.version(session, "summarizer", 1).spec)
        releases.add_version(session, spec.model_copy(update={"system": "Be brief."}), "retrain")
    engine.dispose()
    run = settings.retrain.runs_dir / "support" / "run-1"
    run.mkdir(parents=True)
    gate = {
        "passed": True,
        "primary": "rouge_l",
        "candidate": {"rouge_l": 0.8},
        "production": {"rouge_l": 0.4},
        "eval_set": "held_out",
        "reasons": ["rouge_l +0.4"],
    }
    (run / "run.json").write_text(
        json.dumps(
            {
                "outcome": "promoted",
                "version": 2,
                "gate": gate,
                "train_examples": 60,
                "eval_examples": 8,
                "objective": {"objective": "sft+dpo", "reason": "auto: 48 preference pairs"},
                "preference": {
                    "evidence": {
                        "items": 12,
                        "won": 0.75,
                        "candidate_accuracy": 0.9,
                        "production_accuracy": 0.5,
                    }
                },
                "train": {
                    "plan": {"max_steps": 800, "eval_every": 5, "patience": 4},
                    "stop_rule": "plateau",
                    "stop_reason": "plateau at step 95: validation loss improved less than 1% "
                    "in 4 evaluations (20 steps); best at step 75",
                    "steps": 95,
                    "best_step": 75,
                    "best_validation_loss": 0.41,
                    "seconds": 310.5,
                },
            }
        )
    )
    losses = [3.0 * 0.97**i + 0.3 for i in range(95)]
    validation = [
        (s, 3.2 * 0.96 ** min(s, 75) + 0.4 + max(0, s - 75) / 500) for s in range(5, 96, 5)
    ]
    (run / "loss.svg").write_text(loss_curve_svg(losses, validation, best_step=75))
    (run / "report.html").write_text("<html><body><h1>Evaluation gate</h1></body></html>")
    prediction = {
        "set": "held_out",
        "id": "q1",
        "reference": "The lamp costs 40 euros.",
        "production": "It costs money.",
        "candidate": "The lamp costs 42 euros.",
    }
    (run / "eval_predictions.jsonl").write_text(json.dumps(prediction) + "\n")  # fmt: skip
    store = settings.serve.adapter_store
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(base_url=base, headers=admin, timeout=30) as http:
        for n in ("c1", "c2"):
            lineage = {"run_id": "run-1", "dataset_hash": "ab" * 32} if n == "c2" else {}
            out = http.post("/admin/adapters", json={"name": "support", "lineage": lineage,
                            "path": str(make_adapter_dir(store, n))})  # fmt: skip
            assert out.status_code == 201, out.text
        assert http.post("/admin/aliases/support/promote", json={"version": 1}).status_code == 200
        out = http.post("/admin/templates/summarizer/rollouts", json={"version": 2, "steps": [5]})
        assert out.status_code == 201, out.text
        chat = {"model": "support", "messages": [{"role": "user", "content": "hi"}]}
        client = {"Authorization": f"Bearer {keys['client']}"}
        assert http.post("/v1/chat/completions", json=chat, headers=client).status_code == 200
    yield {"base": base, **keys}


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/review")
    page.fill("#key", key)
    page.click("button[type=submit]")


def test_console_pages_and_admin_actions(browser: Browser, console: dict[str, str]) -> None:
    base = console["base"]
    page = browser.new_page()
    sign_in(page, base, console["admin"])

    page.goto(f"{base}/ops/overview")
    expect(page.locator("#replicas tr.replica-up")).to_have_count(1)
    held = page.locator("#replicas tr.replica-up")
    expect(held.locator("td.held")).to_have_text(re.compile(r"^[1-9]"))  # support@1 is loaded
    expect(held.locator("td.loads")).to_have_text(re.compile(r"^[1-9]"))
    expect(page.locator("#problems")).to_contain_text("shop: drift (70% drifted)")
    expect(page.locator("#last-drift tr.verdict-no_drift")).to_contain_text("support")
    expect(page.locator("#traffic")).to_contain_text("support")
    expect(page.locator("#capture")).to_contain_text("queue 0")
    shot(page, "console-overview.png")

    page.goto(f"{base}/ops/drift")
    expect(page.locator("#drift-reports tr.verdict-drift")).to_have_count(2)
    page.select_option("#alias", "support")
    page.click("#drift-filter button")
    expect(page.locator("#chart-drift-share circle")).to_have_count(3)
    expect(page.locator("#drift-reports tr.verdict-drift .columns")).to_have_text("prompt_length")
    shot(page, "console-drift.png")
    page.select_option("#verdict", "drift")
    page.click("#drift-filter button")
    expect(page.locator("#drift-reports tr.verdict-no_drift")).to_have_count(0)
    expect(page.locator("#drift-reports tr.verdict-drift")).to_have_count(1)
    page.click("#drift-reports tr.verdict-drift a")
    expect(page.locator("body")).to_contain_text("evidently report")

    page.goto(f"{base}/ops/runs")
    expect(page.locator("#runs")).to_contain_text("rouge_l 0.800 vs 0.400")
    expect(page.locator("#runs .objective").first).to_have_text("sft+dpo")
    page.click("text=run-1")
    expect(page.locator("#gate")).to_contain_text("0.800")
    candidate = page.locator("#predictions tr").nth(1).locator("td").nth(3)
    expect(candidate.locator(".added")).to_have_text("42")
    expect(candidate.locator(".missing")).to_have_text("40")
    expect(page.locator("img#loss")).to_be_visible()
    ended = page.locator("#ended-by")
    expect(ended).to_contain_text("Training ended: the validation loss stopped improving")
    expect(ended).to_contain_text("plateau at step 95")
    expect(page.locator("#training")).to_contain_text("best validation loss 0.41 at step 75")
    expect(page.locator("#objective")).to_contain_text("Objective: sft+dpo — auto: 48 preference")
    expect(page.locator("#preference-evidence")).to_contain_text(
        "more than production on 75%; preference accuracy 0.500 → 0.900"
    )
    shot(page, "console-run.png")
    assert page.request.get(f"{base}/ops/runs/support/run-1/report.html").ok
    for bad in ("..%2F..%2Fetc/passwd", "run.json"):
        assert page.request.get(f"{base}/ops/runs/support/run-1/{bad}").status == 404

    page.goto(f"{base}/ops/adapters?q=SUPP")
    expect(page.locator("#counts")).to_contain_text("matching “SUPP” · page 1 of 1")
    expect(page.locator("#alias-support")).to_have_count(1)
    page.goto(f"{base}/ops/adapters?q=nothing-like-this")
    expect(page.locator("#counts")).to_contain_text("0 aliases, 0 versions")
    page.goto(f"{base}/ops/adapters")
    expect(page.locator("#alias-support .production")).to_have_text("v1")
    expect(page.locator("#version-support-2")).to_contain_text("run-1")
    page.click("#promote-support-2")
    expect(page.locator("#confirm-question")).to_have_text("Promote support@2 to production?")
    shot(page, "console-confirm.png")
    page.click("#confirm")
    expect(page.locator("#flash")).to_contain_text("support: production v2")
    expect(page.locator("#alias-support .production")).to_have_text("v2")
    page.click("#rollback-support")
    page.click("#confirm")
    expect(page.locator("#flash")).to_contain_text("support: production v1")
    page.click("#canary-support-2")
    expect(page.locator("#confirm-question")).to_contain_text("Send 10% of support's traffic to v2")
    page.click("#confirm")
    expect(page.locator("#flash")).to_contain_text("production v1, canary v2 at 10%")
    expect(page.locator("#template-summarizer")).to_contain_text("v2 at 5%")
    expect(page.locator("#template-support-agent")).to_contain_text("v1 (latest)")
    expect(page.locator("#rollouts")).to_contain_text("template summarizer v2 over v1")
    shot(page, "console-adapters.png")

    reviewer = browser.new_page()
    sign_in(reviewer, base, console["reviewer"])
    reviewer.goto(f"{base}/ops/adapters")
    expect(reviewer.locator("#read-only")).to_be_visible()
    expect(reviewer.locator("#promote-support-2")).to_have_count(0)
    csrf = next(c["value"] for c in reviewer.context.cookies() if c["name"] == "loraloop_csrf")
    form = {"version": "2", "confirm": "yes", "csrf": csrf}
    refused = reviewer.request.post(f"{base}/ops/adapters/support/promote", form=form)
    assert refused.status == 401
    reviewer.goto(f"{base}/ops/adapters")
    expect(reviewer.locator("#alias-support .production")).to_have_text("v1")
