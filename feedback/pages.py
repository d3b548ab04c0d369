"""Server-rendered pages: the reviewers' queue (/review), blind comparison of production
and shadow answers (/review/pairs) and the ops view (/ops).

Plain HTML forms and a few lines of inline JavaScript for keyboard shortcuts: no
front-end build step. Reviewers sign in with their key once: the gateway keeps a
server-side session (expiring, ended by sign-out or by revoking the key) whose random
token is the HttpOnly, SameSite cookie; the key itself never goes into a cookie (the app
factory hands in `signed_in`). Every form post carries a CSRF token that must match a
cookie of its own (double submit) and, when the browser says where it comes from, the
page's own origin: a form on another site cannot act for a signed-in reviewer. Everything shown is
escaped by Jinja's autoescape; nothing is marked safe.
"""

import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, col, func, select

from feedback.api import get_session
from feedback.charts import build_charts
from feedback.drift.store import list_reports, report_html
from feedback.models import Interaction, Review
from feedback.ops import Window, ops_stats
from feedback.pairwise import PairError, next_pair, submit_pair
from feedback.queue import QueueError, ReviewQueue
from feedback.settings import FeedbackSettings
from feedback.stats import current_rating
from feedback.tool_calls import calls_from_form, same_calls, shown, tool_names

COOKIE, SINCE, CSRF = "loraloop_session", "loraloop_since", "loraloop_csrf"
templates = Jinja2Templates(directory=Path(__file__).parent / "web")
Access = Callable[..., Any]
# Pages may not be framed (clickjacking) nor load anything from elsewhere; their scripts
# and styles are inline (Evidently's report page too), so 'unsafe-inline' stays.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def secured(response: Response) -> Response:
    response.headers.update(PAGE_HEADERS)
    return response


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: its cookie's value, or a new one the response sets."""
    token = request.cookies.get(CSRF) or getattr(request.state, "new_csrf", None)
    if not token:
        token = request.state.new_csrf = secrets.token_urlsafe(24)
    return token


def same_site_form(request: Request, token: str) -> bool:
    """The form's token matches the browser's cookie, and its origin (when sent) is ours."""
    cookie = request.cookies.get(CSRF, "")
    if not cookie or not hmac.compare_digest(cookie, token):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return True


class PageRefusal(Exception):
    """Raised by a page dependency instead of running the handler: the app answers with
    `response` (the sign-in page, or the refusal of a forged form)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def page_refusal(_: Request, exc: Exception) -> Response:
    """The app's handler for PageRefusal (installed by the app factory)."""
    assert isinstance(exc, PageRefusal)
    return exc.response


def refused(request: Request) -> HTMLResponse:
    message = "This form came from another site or an old page: reload and try again."
    return render(request, "login.html", 403, message=message, error=True)


def same_site(request: Request, csrf: str = Form("")) -> None:
    """A dependency for every page form: the CSRF token and origin check, else 403."""
    if not same_site_form(request, csrf):
        raise PageRefusal(refused(request))


def form_poster(
    signed_in: Callable[[str, str], Access], role: str, why: str = "Sign in first."
) -> Access:
    """The prologue of every signed-in form post as one dependency: the principal with at
    least `role`, else the sign-in page (401); then the CSRF check (403)."""
    viewer = signed_in(role, COOKIE)

    def dependency(
        request: Request, who: Annotated[Any, Depends(viewer)], csrf: str = Form("")
    ) -> Any:
        if who is None:
            raise PageRefusal(render(request, "login.html", 401, message=why, error=False))
        same_site(request, csrf)
        return who

    return dependency


def render(request: Request, template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    """A page from feedback/web, with the CSRF token (and its cookie when new) and the
    security headers."""
    context["csrf"] = csrf_token(request)
    response = templates.TemplateResponse(request, template, context, status_code=status)
    if getattr(request.state, "new_csrf", None):
        response.set_cookie(
            CSRF,
            request.state.new_csrf,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    secured(response)
    return response


def build_pages(
    settings: FeedbackSettings,
    new_versions: Callable[[], set[tuple[str, int]]],
    signed_in: Callable[[str, str], Access],
    public: Callable[[], Access],
    rollouts: Callable[[Session], list[dict[str, Any]]] = lambda _: [],
) -> APIRouter:
    """`rollouts(session)` lists recent rollouts for the ops page (they are the online
    path's, which this layer does not import)."""
    router = APIRouter(include_in_schema=False)
    Viewer = Annotated[Any, Depends(signed_in("reviewer", COOKIE))]
    Poster = Annotated[Any, Depends(form_poster(signed_in, "reviewer"))]
    DB = Annotated[Session, Depends(get_session)]
    Public = [Depends(public()), Depends(same_site)]

    def sign_in(request: Request, message: str | None = None) -> HTMLResponse:
        """The sign-in form, with 401: the page needs a reviewer key."""
        return render(request, "login.html", 401, message=message, error=False)

    def back(message: str | None = None) -> RedirectResponse:
        url = "/review" + (f"?message={quote(message)}" if message else "")
        return RedirectResponse(url, status_code=303)

    @router.get("/review", response_class=HTMLResponse)
    def review_page(
        request: Request, who: Viewer, session: DB, message: str | None = None
    ) -> Response:
        if who is None:
            error = message is not None
            return render(request, "login.html", 401, message=message, error=error)
        reviewer = who.key_id or "local"
        since = datetime.fromisoformat(request.cookies.get(SINCE) or datetime.now(UTC).isoformat())
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
            rating = fb and {
                "text": ("thumbs down" if fb.rating < 0 else "thumbs up")
                if fb.scale == "thumbs"
                else f"{fb.rating}/5",
                "comment": fb.comment,
            }
            item = {
                "interaction_id": interaction.id,
                "lease_expires_at": lease.expires_at,
                "messages": [
                    {**m, "calls": shown(m.get("tool_calls"))} for m in interaction.conversation
                ],
                "response_text": interaction.response_text,
                "tool_calls": shown(interaction.tool_calls),
                "tools": tool_names(interaction.tools),
                "template": interaction.template,
                "template_version": interaction.template_version,
                "alias": interaction.alias,
                "adapter_version": interaction.adapter_version,
                "trace_id": interaction.trace_id,
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

    @router.post("/review/login", dependencies=Public)
    async def login(request: Request, key: str = Form(...)) -> Response:
        """A valid reviewer key opens a server-side session; the cookie holds its token."""
        try:
            _, token = await request.app.state.auth.sign_in(key, "reviewer")
        except Exception as exc:
            if getattr(exc, "status", 401) == 403:
                return back("That key is not valid for reviewing.")
            return back("That key is not valid.")
        response = back()
        secure = request.url.scheme == "https"
        for name, value in ((COOKIE, token), (SINCE, datetime.now(UTC).isoformat())):
            response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure)
        return response

    @router.post("/review/logout", dependencies=Public)
    async def logout(request: Request) -> Response:
        if token := request.cookies.get(COOKIE):
            await request.app.state.auth.sign_out(token)
        response = back()
        response.delete_cookie(COOKIE)
        response.delete_cookie(SINCE)
        return response

    @router.post("/review/submit")
    def submit(
        who: Poster,
        session: DB,
        interaction_id: str = Form(..., max_length=64),
        score: int = Form(..., ge=1, le=5),
        labels: list[str] | None = Form(None),
        correction: str | None = Form(None, max_length=100_000),
        call_name: list[str] | None = Form(None, max_length=32),
        call_arguments: list[str] | None = Form(None, max_length=32),
        note: str = Form("", max_length=10_000),
    ) -> Response:
        reviewer = who.key_id or "local"
        item = session.get(Interaction, interaction_id)
        original = (item.response_text or "") if item else ""
        fixed = None if correction is None else correction.strip()
        answered = item.tool_calls if item else None
        try:
            calls = calls_from_form(call_name or [], call_arguments or [], answered)
        except ValueError as exc:
            return back(str(exc))
        review = Review(
            interaction_id=interaction_id,
            reviewer_id=reviewer,
            score=score,
            labels=labels or [],
            note=note.strip() or None,
            correction=None if fixed is None or fixed == original.strip() else fixed,
            correction_tool_calls=None if same_calls(calls, answered) else calls,
        )
        try:
            ReviewQueue(settings, set()).submit(session, reviewer, review)
        except QueueError as exc:
            return back(str(exc))
        return back("Saved.")

    @router.post("/review/skip")
    def skip(
        who: Poster,
        session: DB,
        interaction_id: str = Form(..., max_length=64),
    ) -> Response:
        try:
            ReviewQueue(settings, set()).skip(session, who.key_id or "local", interaction_id)
        except QueueError as exc:
            return back(str(exc))
        return back("Skipped.")

    @router.get("/review/pairs", response_class=HTMLResponse)
    def pairs_page(
        request: Request, who: Viewer, session: DB, message: str | None = None
    ) -> Response:
        """A production answer and its shadow's, blind; versions shown after the choice."""
        if who is None:
            return sign_in(request, "Sign in to compare answers.")
        reviewer = who.key_id or "local"
        found = next_pair(session, reviewer)
        pair = found and found.shown(reviewer)
        return render(request, "pairs.html", pair=pair, reviewer=reviewer, message=message)

    @router.post("/review/pairs/submit")
    def pairs_submit(
        who: Poster,
        session: DB,
        interaction_id: str = Form(..., max_length=64),
        preferred: str = Form(..., pattern="^(a|b|tie)$"),
        correction: str = Form("", max_length=100_000),
    ) -> Response:
        try:
            row, pair = submit_pair(
                session, who.key_id or "local", interaction_id, preferred, correction
            )
        except PairError as exc:
            return RedirectResponse(f"/review/pairs?message={quote(str(exc))}", status_code=303)
        versions = {
            "production": f"production (v{pair.production.adapter_version})",
            "shadow": f"the shadow candidate (v{pair.shadow.adapter_version})",
        }
        said = "a tie" if row.preferred == "tie" else f"{versions[row.preferred]} as better"
        message = (
            f"Saved: you chose {said}. Production was v{pair.production.adapter_version}, "
            f"the shadow v{pair.shadow.adapter_version}."
        )
        return RedirectResponse(f"/review/pairs?message={quote(message)}", status_code=303)

    @router.get("/ops", response_class=HTMLResponse)
    def ops_page(request: Request, who: Viewer, session: DB, window: Window = "hour") -> Response:
        if who is None:
            return sign_in(request, "Sign in to see the ops view.")
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
            rollouts=rollouts(session),
        )

    @router.get("/ops/drift/{report_id}", response_class=HTMLResponse)
    def drift_page(request: Request, who: Viewer, session: DB, report_id: int) -> Response:
        """Evidently's report page, for a signed-in browser (the API wants a header)."""
        if who is None:
            return sign_in(request, "Sign in to see reports.")
        html = report_html(session, report_id)
        if html is None:
            return secured(HTMLResponse(f"drift report {report_id} has no page", 404))
        return secured(HTMLResponse(html))

    return router
