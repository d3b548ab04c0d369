"""`loraloop drift ...`, `loraloop jobs list` and `loraloop worker`."""

import signal
import threading
from datetime import UTC
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlmodel import Session

from feedback.drift.store import list_reports
from feedback.jobs import JobBusy, recent_runs
from feedback.lease import current_leader
from feedback.models import utcnow
from loraloop.cli_support import BarReporter, CliError, console, friendly, setup_logging
from loraloop.db import create_db_engine
from loraloop.settings import get_settings

drift_app = typer.Typer(help="Drift reports on captured traffic (Evidently).", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs and their history.", no_args_is_help=True)
VERDICT_STYLE = {"drift": "bold red", "no_drift": "green", "not_enough_data": "yellow"}


@drift_app.command("run")
@friendly
def drift_run(
    alias: Annotated[str, typer.Option(help="The alias whose traffic to check.")],
    template: Annotated[str | None, typer.Option(help="Only this template's traffic.")] = None,
) -> None:
    """Run one drift report now, store it and print the verdict."""
    from loraloop.worker import DriftJobs

    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
            report = DriftJobs(db, settings).run(
                alias, template, "manual", BarReporter(bar).advance
            )
    except JobBusy as exc:
        raise CliError(str(exc)) from exc
    finally:
        db.dispose()
    style = VERDICT_STYLE.get(report.verdict, "")
    console.print(f"[{style}]{report.verdict}[/] {report.alias}: {report.reason}")
    console.print(
        f"report {report.id}: reference {report.reference_rows} rows, "
        f"current {report.current_rows} rows, {report.duration_s:.1f} s"
    )
    judged = [c for c in report.columns if c.get("status") == "judged"]
    if judged:
        table = Table("column", "method", "score", "threshold", "drifted")
        for c in judged:
            score = "-" if c["score"] is None else f"{c['score']:.4g}"
            drifted = "[red]yes[/]" if c["drifted"] else "no"
            table.add_row(c["column"], str(c["method"]), score, str(c["threshold"]), drifted)
        console.print(table)
    decision = report.decision
    console.print(
        f"retrain: {'yes' if decision.get('retrain') else 'no'}"
        f" · alert: {'yes' if decision.get('alert') else 'no'} ({decision.get('reason')})"
    )
    console.print(f"page: /v1/drift/reports/{report.id}.html")


@drift_app.command("reports")
@friendly
def drift_reports(
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """List stored drift reports, newest first."""
    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    with Session(db) as session:
        rows = list_reports(session, alias, None, limit)
    db.dispose()
    table = Table("id", "created", "alias", "template", "rows ref/cur", "share", "verdict")
    for r in rows:
        share = "-" if r.drift_share is None else f"{r.drift_share:.0%}"
        verdict = f"[{VERDICT_STYLE.get(r.verdict, '')}]{r.verdict}[/]"
        table.add_row(
            str(r.id),
            f"{r.created_at:%Y-%m-%d %H:%M}",
            r.alias,
            r.template or "",
            f"{r.reference_rows}/{r.current_rows}",
            share,
            verdict,
        )
    console.print(table)


@jobs_app.command("list")
@friendly
def jobs_list(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """Scheduled jobs with their next run, then the most recent runs."""
    from loraloop.worker import Worker, scheduled_jobs

    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    try:
        scheduled = scheduled_jobs(db)
        with Session(db) as session:
            runs = recent_runs(session, limit)
            leader = current_leader(session, Worker.LEASE)
    finally:
        db.dispose()
    if leader is None:
        console.print("scheduler leader: none (no worker holds the lease)")
    else:
        expired = leader.expires_at.replace(tzinfo=leader.expires_at.tzinfo or UTC) < utcnow()
        console.print(
            f"scheduler leader: {leader.owner} since {leader.acquired_at:%Y-%m-%d %H:%M:%S}"
            + (" [red](lease expired)[/]" if expired else "")
        )
    table = Table("job", "trigger", "next run", title="scheduled")
    for job in scheduled:
        table.add_row(job["id"], job["trigger"], f"{job['next_run']:%Y-%m-%d %H:%M %Z}")
    console.print(table if scheduled else "scheduled: none yet (the scheduler adds them)")
    history = Table(
        "run", "job", "target", "trigger", "started", "took", "status", "result", title="history"
    )
    for r in runs:
        took = "…" if r.seconds is None else f"{r.seconds:.1f}s"
        history.add_row(
            str(r.id),
            r.job,
            r.target,
            r.trigger,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            took,
            r.status,
            r.result or r.error or "",
        )
    console.print(history)


def worker() -> None:
    """Run the scheduler on its own (set LORALOOP_WORKER_IN_GATEWAY=false on gateways).

    Start one on each of several machines: one holds the lease and runs the jobs, the others
    stand by and take over within LORALOOP_WORKER_LEASE_TTL_S when it dies. SIGTERM stops
    it cleanly (the lease is given up at once, so a standby need not wait)."""
    from loraloop.worker import Worker

    setup_logging()
    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    work = Worker(db, settings)
    work.start()
    state = "active" if work.active else "standby (another worker holds the lease)"
    console.print(
        f"worker {work.lease.owner}: {state}; drift jobs on {settings.worker.drift_cron!r}; "
        "Ctrl-C stops"
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        work.stop()
        db.dispose()
