"""Server-rendered pages: the reviewers' queue (/review) and the ops view (/ops).

Plain HTML forms and a few lines of inline JavaScript for keyboard shortcuts: no
front-end build step. Reviewers sign in with their key, kept in an HttpOnly cookie and
checked by the same authenticator the API uses (handed in by the app factory).
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, col, func, select

from feedback.charts import build_charts
from feedback.drift.store import list_reports, report_html
from feedback.models import Interaction, Review
from feedback.ops import Window, ops_stats
from feedback.queue import QueueError, ReviewQueue
from feedback.settings import FeedbackSettings
from feedback.stats import current_rating

COOKIE, SINCE = "loraloop_key", "loraloop_since"
templates = Jinja2Templates(directory=Path(__file__).parent / "web")


def build_pages(settings: FeedbackSettings, new_versions: Any = set) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def principal(request: Request) -> Any | None:
        key = request.cookies.get(COOKIE)
        try:
            found = await request.app.state.auth.authenticate(f"Bearer {key}" if key else None)
        except Exception:  # the authenticator's own 401: not signed in
            return None
        return found if found.role in ("reviewer", "admin") else None

    def render(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context)

    def back(message: str | None = None) -> RedirectResponse:
        url = "/review" + (f"?message={message}" if message else "")
        return RedirectResponse(url, status_code=303)

    @router.get("/review", response_class=HTMLResponse)
    async def review_page(request: Request, message: str | None = None) -> Response:
        who = await principal(request)
        if who is None:
            return render(request, "login.html", message=message, error=bool(message))
        reviewer = who.key_id or "local"
        since = datetime.fromisoformat(request.cookies.get(SINCE) or datetime.now(UTC).isoformat())
        with Session(request.app.state.db) as session:
            found = ReviewQueue(settings, new_versions()).next(session, reviewer)
            done = session.exec(
                select(func.count())
                .select_from(Review)
                .where(Review.reviewer_id == reviewer, col(Review.created_at) >= since)
            ).one()
            item = rating = None
            if found is not None:
                interaction, lease = found
                fb = current_rating(session, interaction.id)
                rating = fb and (
                    ("thumbs down" if fb.rating < 0 else "thumbs up")
                    if fb.scale == "thumbs"
                    else f"{fb.rating}/5"
                )
                item = {
                    "interaction_id": interaction.id,
                    "lease_expires_at": lease.expires_at,
                    "messages": interaction.conversation,
                    "response_text": interaction.response_text,
                    "template": interaction.template,
                    "template_version": interaction.template_version,
                    "alias": interaction.alias,
                    "adapter_version": interaction.adapter_version,
                    "labels": settings.review_labels,
                }
        return render(
            request,
            "review.html",
            item=item,
            rating=rating,
            done=done,
            reviewer=reviewer,
            message=message,
        )

    @router.post("/review/login")
    async def login(request: Request, key: str = Form(...)) -> Response:
        auth = request.app.state.auth
        try:
            found = await auth.authenticate(f"Bearer {key}")
        except Exception:
            return back("That key is not valid.")
        if found.key_id is None or found.role not in ("reviewer", "admin"):
            return back("That key is not valid for reviewing.")
        response = back()
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict")
        response.set_cookie(SINCE, datetime.now(UTC).isoformat(), httponly=True, samesite="strict")
        return response

    @router.post("/review/logout")
    async def logout() -> Response:
        response = back()
        response.delete_cookie(COOKIE)
        response.delete_cookie(SINCE)
        return response

    @router.post("/review/submit")
    async def submit(
        request: Request,
        interaction_id: str = Form(...),
        score: int = Form(...),
        labels: list[str] | None = Form(None),
        correction: str = Form(""),
        note: str = Form(""),
    ) -> Response:
        who = await principal(request)
        if who is None:
            return back("Sign in first.")
        reviewer = who.key_id or "local"
        with Session(request.app.state.db) as session:
            item = session.get(Interaction, interaction_id)
            original = (item.response_text or "") if item else ""
            fixed = correction.strip()
            review = Review(
                interaction_id=interaction_id,
                reviewer_id=reviewer,
                score=score,
                labels=labels or [],
                note=note.strip() or None,
                correction=fixed if fixed and fixed != original.strip() else None,
            )
            try:
                ReviewQueue(settings, set()).submit(session, reviewer, review)
            except QueueError as exc:
                return back(str(exc))
        return back("Saved.")

    @router.post("/review/skip")
    async def skip(request: Request, interaction_id: str = Form(...)) -> Response:
        who = await principal(request)
        if who is None:
            return back("Sign in first.")
        with Session(request.app.state.db) as session:
            try:
                ReviewQueue(settings, set()).skip(session, who.key_id or "local", interaction_id)
            except QueueError as exc:
                return back(str(exc))
        return back("Skipped.")

    @router.get("/ops", response_class=HTMLResponse)
    async def ops_page(request: Request, window: Window = "hour") -> Response:
        who = await principal(request)
        if who is None:
            return render(
                request, "login.html", message="Sign in to see the ops view.", error=False
            )
        with Session(request.app.state.db) as session:
            stats = ops_stats(session, window)
            drift = list_reports(session, limit=20)
        charts, series, size = build_charts(stats)
        return render(
            request,
            "ops.html",
            stats=stats,
            charts=charts,
            series=series,
            W=size[0],
            H=size[1],
            drift=drift,
        )

    @router.get("/ops/drift/{report_id}", response_class=HTMLResponse)
    async def drift_page(request: Request, report_id: int) -> Response:
        """Evidently's report page, for a signed-in browser (the API wants a header)."""
        if await principal(request) is None:
            return render(request, "login.html", message="Sign in to see reports.", error=False)
        with Session(request.app.state.db) as session:
            html = report_html(session, report_id)
        if html is None:
            return HTMLResponse(f"drift report {report_id} has no page", status_code=404)
        return HTMLResponse(html)

    return router
