"""The review and ops pages in a real headless Chromium (Debian's), driven by Playwright.

Screenshots go to test-results/screenshots/. The gateway runs on the fake engine: these
tests are about the pages, the real engine is covered elsewhere.
"""

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlmodel import Session, select

from feedback.models import Review
from loraloop import db
from loraloop.settings import Settings
from serve.auth import create_key
from tests.utils.browser import shot


@pytest.fixture
def site(migrated_db: str, make_live_gateway: Callable[..., Settings]) -> dict[str, str]:
    settings = make_live_gateway(migrated_db, require_keys=True)
    base = f"http://127.0.0.1:{settings.serve.port}"
    engine = db.create_db_engine(migrated_db)
    with Session(engine) as session:
        keys = {role: create_key(session, role, f"{role} key") for role in ("client", "reviewer")}
    engine.dispose()
    client = {"Authorization": f"Bearer {keys['client']}"}
    with httpx.Client(base_url=base, headers=client, timeout=30) as http:
        ids = []
        for question in ("Where is my invoice?", "How do I reset my password?"):
            r = http.post(
                "/v1/chat/completions",
                json={
                    "model": "base",
                    "template": "support-agent",
                    "variables": {"customer_name": "Ana"},
                    "messages": [{"role": "user", "content": question}],
                },
            )
            ids.append(r.json()["interaction_id"])
        import time

        time.sleep(0.5)
        for iid in ids:
            assert (
                http.post(
                    "/v1/feedback", json={"interaction_id": iid, "rating": "down"}
                ).status_code
                == 200
            )
    return {"base": base, "reviewer": keys["reviewer"], "db": migrated_db}


def test_reviewer_signs_in_reviews_with_keyboard_and_skips(
    browser: Browser, site: dict[str, str]
) -> None:
    page = browser.new_page()
    page.goto(f"{site['base']}/review")
    expect(page.locator("#key")).to_be_visible()
    page.fill("#key", "ll-not-a-key")
    page.click("button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("not valid")
    shot(page, "review-login.png")

    page.fill("#key", site["reviewer"])
    page.click("button[type=submit]")
    expect(page.locator("#conversation")).to_contain_text("customer support agent")
    expect(page.locator("#meta")).to_contain_text("support-agent")
    expect(page.locator("#user-rating")).to_have_text("thumbs down")
    expect(page.locator("#progress")).to_have_text("0 reviewed this session")
    shot(page, "review-item.png")

    page.keyboard.press("4")
    expect(page.locator("#score-4")).to_be_checked()
    page.check("#label-tone")
    page.keyboard.press("e")
    expect(page.locator("#correction")).to_be_focused()
    page.fill("#correction", "Your invoice is under Billing > Invoices. Anything else?")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#flash")).to_have_text("Saved.")
    expect(page.locator("#progress")).to_have_text("1 reviewed this session")
    shot(page, "review-after-submit.png")

    page.locator("body").click()
    page.keyboard.press("s")
    expect(page.locator("#flash")).to_have_text("Skipped.")
    expect(page.locator("#empty")).to_be_visible()

    engine = db.create_db_engine(site["db"])
    with Session(engine) as session:
        [review] = session.exec(select(Review)).all()
    engine.dispose()
    assert review.score == 4
    assert review.labels == ["tone"]
    assert review.correction == "Your invoice is under Billing > Invoices. Anything else?"


def test_ops_page_draws_charts(browser: Browser, site: dict[str, str]) -> None:
    page = browser.new_page()
    page.goto(f"{site['base']}/review")
    page.fill("#key", site["reviewer"])
    page.click("button[type=submit]")
    page.goto(f"{site['base']}/ops")
    expect(page.locator("#chart-requests svg circle")).to_have_count(1)
    expect(page.locator("#chart-thumbs_down_rate svg circle")).to_have_count(1)
    expect(page.locator("#ops-table")).to_contain_text("base")
    shot(page, "ops.png")


def test_ops_page_lists_drift_reports_and_opens_evidently(
    browser: Browser, site: dict[str, str]
) -> None:
    from datetime import timedelta

    from feedback.drift import DriftRunner, DriftSettings
    from feedback.models import utcnow
    from tests.utils.traffic import insert_traffic, rows

    engine = db.create_db_engine(site["db"])
    now = utcnow()
    ref, _ = rows(120, now - timedelta(days=6), now - timedelta(days=1), seed=1)
    cur, _ = rows(120, now - timedelta(hours=12), now, seed=2, new_topic=0.7)
    insert_traffic(engine, ref + cur)
    report = DriftRunner(engine, DriftSettings(min_rows=50)).run("support")
    empty = DriftRunner(engine, DriftSettings()).run("nobody")
    engine.dispose()

    page = browser.new_page()
    page.goto(f"{site['base']}/review")
    page.fill("#key", site["reviewer"])
    page.click("button[type=submit]")
    page.goto(f"{site['base']}/ops")
    table = page.locator("#drift-table")
    expect(table.locator("tr.verdict-drift")).to_contain_text("support")
    expect(table.locator("tr.verdict-not_enough_data")).to_contain_text("nobody")
    expect(table.locator(f"a[href='/ops/drift/{empty.id}']")).to_have_count(0)
    shot(page, "ops-drift.png")
    page.click(f"a[href='/ops/drift/{report.id}']")
    expect(page.get_by_text("prompt_chars").first).to_be_visible(timeout=30_000)
    shot(page, "drift-report.png")


XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def test_hostile_text_is_shown_as_text_and_cross_site_forms_are_refused(
    browser: Browser, site: dict[str, str]
) -> None:
    engine = db.create_db_engine(site["db"])
    with Session(engine) as session:
        client = {"Authorization": f"Bearer {create_key(session, 'client', 'xss')}"}
    with httpx.Client(base_url=site["base"], headers=client, timeout=30) as http:
        r = http.post(
            "/v1/chat/completions",
            json={
                "model": "base",
                "template": "support-agent",
                "variables": {"customer_name": XSS},
                "messages": [{"role": "user", "content": XSS}],
            },
        )
        iid = r.json()["interaction_id"]
        feedback = {"interaction_id": iid, "rating": "down", "comment": XSS}
        assert http.post("/v1/feedback", json=feedback).status_code == 200

    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{site['base']}/review")
    page.fill("#key", site["reviewer"])
    page.click("button[type=submit]")
    for _ in range(3):  # the queue's order is the sampler's: skip to the hostile item
        if XSS in (page.locator("#conversation").text_content() or ""):
            break
        page.click("#skip")
    expect(page.locator("#response")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator("#user-comment")).to_have_text(XSS)
    assert page.evaluate("window.__xss") is None and not dialogs, "a payload ran"
    assert page.locator("#conversation script, #conversation img").count() == 0
    shot(page, "review-hostile.png")

    # Another site (localhost is not the same site as 127.0.0.1) posts a review form for
    # the signed-in reviewer: the SameSite cookie stays home, and the form has no token.
    attack = f"""<form id=f method=post action="{site["base"]}/review/submit">
      <input name=interaction_id value="{iid}"><input name=score value=1></form>
      <script>document.getElementById("f").submit()</script>"""
    page.route(
        "http://localhost:9/attack",
        lambda route: route.fulfill(body=attack, content_type="text/html"),
    )
    with page.expect_response(f"{site['base']}/review/submit") as answer:
        page.goto("http://localhost:9/attack")
    assert answer.value.status in (401, 403)
    with Session(engine) as session:
        assert not session.exec(select(Review).where(Review.interaction_id == iid)).all()
    engine.dispose()


def test_pairs_are_compared_blind_and_rollouts_show_on_ops(
    browser: Browser, sqlite_url: str, make_live_gateway: Callable[..., Settings]
) -> None:
    from tests.utils.adapters import make_adapter_dir

    settings = make_live_gateway(sqlite_url, require_keys=True)
    base = f"http://127.0.0.1:{settings.serve.port}"
    engine = db.create_db_engine(sqlite_url)
    with Session(engine) as session:
        keys = {role: create_key(session, role) for role in ("client", "reviewer", "admin")}
    engine.dispose()
    store = settings.serve.adapter_store
    with httpx.Client(base_url=base, timeout=30) as http:
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        names = []
        for n in ("p1", "p2", "p3"):
            adapter = {"name": "shop", "path": str(make_adapter_dir(store, n))}
            out = http.post("/admin/adapters", headers=admin, json=adapter)
            names.append(out.json()["engine_name"])
        http.post("/admin/aliases/shop/promote", headers=admin, json={"version": 1})
        http.post("/admin/aliases/shop/shadow", headers=admin, json={"version": 2, "share": 1})
        question = {"model": "shop", "messages": [{"role": "user", "content": "<b>bold</b>?"}]}
        client = {"Authorization": f"Bearer {keys['client']}"}
        assert http.post("/v1/chat/completions", headers=client, json=question).status_code == 200
        started = http.post("/admin/aliases/shop/rollouts", headers=admin,
                            json={"version": 3, "steps": [10, 50]})  # fmt: skip
        assert started.status_code == 201, started.text

    page = browser.new_page()
    page.goto(f"{base}/review/pairs")
    page.fill("#key", keys["reviewer"])
    page.click("button[type=submit]")
    page.goto(f"{base}/review/pairs")
    expect(page.locator("#answer-a")).to_be_visible(timeout=15_000)
    expect(page.locator("#conversation")).to_contain_text("<b>bold</b>?")  # shown as text
    a_text = page.locator("#answer-a .text").inner_text()
    page_source = page.content()
    assert "shadow" not in page.locator("#pair-form").inner_text().lower()
    assert names[1] in page_source and names[0] in page_source  # both answers, no labels
    shot(page, "review-pairs.png")
    page.keyboard.press("b")
    revealed = page.locator("#revealed")
    expect(revealed).to_contain_text("Production was v1, the shadow v2")
    preferred = "production" if a_text.startswith(f"[{names[1]}]") else "shadow candidate"
    expect(revealed).to_contain_text(
        f"the {preferred}" if preferred != "production" else "production (v1)"
    )
    expect(page.locator("#empty")).to_be_visible()

    page.goto(f"{base}/ops")
    row = page.locator("#rollouts-table tr.rollout-running")
    expect(row).to_contain_text("shop@3 over v1")
    expect(row).to_contain_text("1 of 2")
    shot(page, "ops-rollouts.png")
