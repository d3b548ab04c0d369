"""The operator's console: server-rendered pages over drift reports, retraining runs,
adapter versions and rollouts, and an overview that answers "is anything wrong right now".

The pages read what the packages already store (no queries of their own beyond the
packages' functions); the admin actions on the adapters page call the admin API's own
handlers, so a page action and an API call do exactly the same (load everywhere first,
then switch). Any signed-in reviewer may look; only an admin sees and may use the buttons.
Every action has a confirmation step, and every form carries the CSRF token.
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from feedback.api import get_capture, get_session
from feedback.capture import CaptureWriter
from feedback.charts import share_chart
from feedback.drift.store import latest_reports, list_reports
from feedback.jobs import recent_runs
from feedback.ops import last_hour
from feedback.pages import COOKIE, form_poster, render, secured
from loraloop.settings import Settings
from retrain.records import FILES, predictions, read_run, run_file
from retrain.report import ended_by
from serve.adapters import AdapterRouter
from serve.admin import canary, promote, rollback
from serve.deps import get_replicas, get_router
from serve.errors import APIError
from serve.paging import Window, page
from serve.protocol import CanaryRequest, PromoteRequest
from serve.replicas import ReplicaPool
from serve.rollouts import overview as rollouts_overview
from serve.template_releases import TemplateReleases

VERDICTS = ("drift", "no_drift", "not_enough_data", "failed")
PAGE_SIZE = 50  # aliases and versions per page of /ops/adapters
Action = Literal["promote", "canary", "rollback"]


def build_console(settings: Settings, signed_in: Callable[[str, str], Any]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    Viewer = Annotated[Any, Depends(signed_in("reviewer", COOKIE))]
    AdminPoster = Annotated[
        Any,
        Depends(
            form_poster(
                signed_in, "admin", "Only an admin may change adapters: sign in with an admin key."
            )
        ),
    ]
    DB = Annotated[Session, Depends(get_session)]
    Adapters = Annotated[AdapterRouter, Depends(get_router)]
    runs_dir = settings.retrain.runs_dir

    def login(request: Request) -> HTMLResponse:
        return render(request, "login.html", 401, message="Sign in to see the console.")

    def is_admin(who: Any) -> bool:
        return getattr(who, "role", None) == "admin"

    @router.get("/ops/overview", response_class=HTMLResponse)
    def overview(
        request: Request,
        who: Viewer,
        session: DB,
        replicas: Annotated[ReplicaPool, Depends(get_replicas)],
        adapters: Adapters,
        capture: Annotated[CaptureWriter, Depends(get_capture)],
    ) -> Response:
        if who is None:
            return login(request)
        drift = latest_reports(session)
        running = [r for r in recent_runs(session, limit=100) if r.status == "running"]
        traffic = last_hour(session)
        down = [r for r in replicas.status() if r["state"] != "up"]
        problems = [f"engine replica {r['url']} is {r['state']}" for r in down]
        problems += [f"{t['alias']}: {t['error_rate']:.1%} errors in the last hour"
                     for t in traffic if t["error_rate"] > 0.05]  # fmt: skip
        problems += [f"{alias}: drift ({r.reason})" for alias, r in drift.items()
                     if r.verdict == "drift"]  # fmt: skip
        if capture.spooled or capture.held or capture.spool_error:
            problems.append(f"capture: {capture.spooled} spooled, {capture.held} held in memory")
        return render(
            request, "console_overview.html", traffic=traffic,
            replicas=[{**r, **adapters.load_summary(str(r["url"]))} for r in replicas.status()],
            drift=drift, running=running, problems=problems,
            capture={"queue": capture.depth, "spooled": capture.spooled, "held": capture.held,
                     "quarantined": capture.quarantined},
        )  # fmt: skip

    @router.get("/ops/drift", response_class=HTMLResponse)
    def drift_history(
        request: Request,
        who: Viewer,
        session: DB,
        alias: str | None = Query(None, max_length=128),
        verdict: str | None = Query(None, max_length=32),
    ) -> Response:
        """The form sends empty values for "all": they mean no filter."""
        if who is None:
            return login(request)
        alias = alias or None
        verdict = verdict if verdict in VERDICTS else None
        reports = list_reports(session, alias, verdict, limit=200)
        aliases = sorted(latest_reports(session))
        points = [(r.created_at, r.drift_share) for r in reversed(reports)
                  if r.drift_share is not None]  # fmt: skip
        chart = share_chart(points) if points else None
        return render(request, "console_drift.html", reports=reports, aliases=aliases,
                      alias=alias, verdict=verdict, chart=chart)  # fmt: skip

    @router.get("/ops/runs", response_class=HTMLResponse)
    def runs(
        request: Request, who: Viewer, session: DB, alias: str | None = Query(None, max_length=128)
    ) -> Response:
        if who is None:
            return login(request)
        alias = alias or None
        rows = []
        for job in recent_runs(session, limit=100, job="retrain", target=alias):
            run_id = (job.result or "").split(":")[0]
            record = read_run(runs_dir, job.target, run_id) if run_id else None
            rows.append({"job": job, "run_id": run_id, "record": record})
        return render(request, "console_runs.html", rows=rows, alias=alias)

    @router.get("/ops/runs/{alias}/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, who: Viewer, alias: str, run_id: str) -> Response:
        if who is None:
            return login(request)
        record = read_run(runs_dir, alias, run_id)
        if record is None:
            return secured(HTMLResponse(f"run {alias}/{run_id} has no record", 404))
        return render(request, "console_run.html", record=record, alias=alias, run_id=run_id,
                      ended=ended_by(record.get("train") or {}),
                      predictions=predictions(runs_dir, alias, run_id),
                      files=[n for n in FILES if run_file(runs_dir, alias, run_id, n)])  # fmt: skip

    @router.get("/ops/runs/{alias}/{run_id}/{name}")
    def run_asset(request: Request, who: Viewer, alias: str, run_id: str, name: str) -> Response:
        """report.html or loss.svg of a run, nothing else."""
        if who is None:
            return login(request)
        path = run_file(runs_dir, alias, run_id, name)
        if path is None:
            return secured(HTMLResponse("no such file", 404))
        return secured(FileResponse(path, media_type=FILES[name]))

    @router.get("/ops/adapters", response_class=HTMLResponse)
    async def adapters_page(
        request: Request,
        who: Viewer,
        adapters: Adapters,
        session: DB,
        message: str | None = None,
        q: Annotated[str | None, Query(max_length=128)] = None,
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> Response:
        """Aliases and versions whose name contains `q`, PAGE_SIZE of each per page."""
        if who is None:
            return login(request)
        await adapters.reconcile()
        asked = Window(q or None, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
        versions = page(sorted(adapters.versions.values(), key=lambda v: (v.name, -v.version)),
                        lambda v: v.name, asked)  # fmt: skip
        aliases = page(sorted(adapters.aliases.values(), key=lambda a: a.name),
                       lambda a: a.name, asked)  # fmt: skip
        pages = max(1, -(-max(versions.total, aliases.total) // PAGE_SIZE))
        templates = TemplateReleases().overview(session)
        return render(request, "console_adapters.html", aliases=aliases.items,
                      versions=versions.items, totals=(aliases.total, versions.total),
                      q=q or "", page=page_no, pages=pages,
                      admin=is_admin(who), rollouts=rollouts_overview(session),
                      templates=templates, message=message)  # fmt: skip

    @router.post("/ops/adapters/{name}/{action}", response_class=HTMLResponse)
    async def adapter_action(
        request: Request,
        _: AdminPoster,
        adapters: Adapters,
        session: DB,
        name: str,
        action: Action,
        version: int | None = Form(None, ge=1, le=2**31 - 1),
        share: float = Form(0.1, ge=0, le=1),
        confirm: str = Form(""),
    ) -> Response:
        """First post: a confirmation page. Confirmed: the admin API's own handler."""
        if confirm != "yes":
            return render(request, "console_confirm.html", name=name, action=action,
                          version=version, share=share)  # fmt: skip
        try:
            if action == "promote" and version is not None:
                alias = await promote(name, PromoteRequest(version=version), adapters, session)
            elif action == "canary":
                body = CanaryRequest(version=version, share=share if version else 0)
                alias = await canary(name, body, adapters, session)
            elif action == "rollback":
                alias = await rollback(name, adapters, session)
            else:
                raise APIError(400, "promote needs a version")
            said = f"{name}: production v{alias.production_version}" + (
                f", canary v{alias.canary_version} at {alias.canary_share:.0%}"
                if alias.canary_version else ""
            )  # fmt: skip
        except APIError as exc:
            said = f"{action} {name} failed: {exc.message}"
        return RedirectResponse(f"/ops/adapters?message={quote(said)}", status_code=303)

    return router
