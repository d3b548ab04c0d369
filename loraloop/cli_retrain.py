"""`loraloop retrain run` and `loraloop retrain runs`."""

import json
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from feedback.jobs import JobBusy, recent_runs
from loraloop.cli_support import CliError, console, friendly
from loraloop.db import create_db_engine
from loraloop.settings import get_settings
from retrain.pipeline import Reporter

retrain_app = typer.Typer(
    help="Retraining runs: curate, train, gate, promote.", no_args_is_help=True
)
OUTCOME_STYLE = {"promoted": "bold green", "canary": "green", "rejected": "yellow"}


class BarReporter(Reporter):
    """One rich bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def stage(self, name: str) -> None:
        """A new stage ends the ones before it (their bars show done)."""
        super().stage(name)
        self.finish()
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=None)

    def finish(self) -> None:
        for task in self.progress.tasks:
            if task.id in self.tasks.values() and not task.finished:
                done = task.completed or 1
                self.progress.update(task.id, total=done, completed=done)

    def advance(self, stage: str, done: int, total: int, detail: str = "") -> None:
        if stage not in self.tasks:
            self.stage(stage)
        description = f"{stage} {detail}".strip()
        self.progress.update(
            self.tasks[stage], completed=done, total=total, description=description
        )


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@retrain_app.command("run")
@friendly
def retrain_run(
    alias: Annotated[str, typer.Option(help="The alias to train a new version of.")],
    new: Annotated[
        bool, typer.Option(help="The alias has no version yet: compare with the base model.")
    ] = False,
) -> None:
    """Build and curate the dataset, train, evaluate against production, promote if better."""
    from loraloop.retraining import RetrainJobs

    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    try:
        with progress_bar() as bar:
            outcome = RetrainJobs(db, settings).run(alias, "manual", new, BarReporter(bar))
    except JobBusy as exc:
        raise CliError(str(exc)) from exc
    finally:
        db.dispose()
    gate = outcome.gate
    table = Table("metric", "production", "candidate", "gain")
    for name, value in gate.candidate.items():
        base = gate.production[name]
        table.add_row(name, f"{base:.4f}", f"{value:.4f}", f"{value - base:+.4f}")
    console.print(table)
    style = OUTCOME_STYLE.get(outcome.outcome, "")
    console.print(Text.assemble((outcome.summary(), style), f" ({'; '.join(gate.reasons)})"))
    console.print(
        f"{outcome.train_examples} train / {outcome.eval_examples} held out, "
        f"dataset {outcome.dataset_hash[:12]}; report: {outcome.run_dir / 'report.html'}"
    )


@retrain_app.command("runs")
@friendly
def retrain_runs(
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Recent retraining runs with their outcome (from the job history and run records)."""
    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    try:
        with Session(db) as session:
            runs = [r for r in recent_runs(session, limit * 4, job="retrain")]
    finally:
        db.dispose()
    runs = [r for r in runs if alias is None or r.target == alias][:limit]
    table = Table("job", "alias", "trigger", "started", "took", "status", "outcome", "run")
    for r in runs:
        took = f"{(r.finished_at - r.started_at).total_seconds():.0f}s" if r.finished_at else "…"
        run_id, _, summary = (r.result or "").partition(": ")
        record = settings.retrain.runs_dir / r.target / run_id / "run.json"
        outcome = (
            json.loads(record.read_text()).get("outcome") if run_id and record.is_file() else None
        )
        style = OUTCOME_STYLE.get(outcome or "", "")
        table.add_row(
            str(r.id),
            r.target,
            r.trigger,
            f"{r.started_at:%Y-%m-%d %H:%M}",
            took,
            r.status,
            Text(summary or r.error or "", style=style),
            run_id,
        )
    console.print(table if runs else "no retraining runs yet")
