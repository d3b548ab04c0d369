"""`loraloop retrain run` and `loraloop retrain runs`."""

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from feedback.jobs import JobBusy, recent_runs
from loraloop.cli_support import BarReporter, CliError, console, friendly, progress_bar
from loraloop.db import create_db_engine
from loraloop.settings import get_settings
from retrain.decision import decision_table
from retrain.objectives import OBJECTIVES
from retrain.outcome import RunOutcome

Objective = StrEnum("Objective", {o: o for o in ("auto", *OBJECTIVES)})  # type: ignore[misc]

retrain_app = typer.Typer(
    help="Retraining runs: curate, train, gate, promote.", no_args_is_help=True
)
OUTCOME_STYLE = {
    "promoted": "bold green",
    "canary": "green",
    "rollout": "green",
    "prompt-rollout": "green",
    "rejected": "yellow",
}


@retrain_app.command("run")
@friendly
def retrain_run(
    alias: Annotated[str, typer.Option(help="The alias to train a new version of.")],
    new: Annotated[
        bool, typer.Option(help="The alias has no version yet: compare with the base model.")
    ] = False,
    objective: Annotated[
        Objective | None,
        typer.Option(
            help="sft, dpo, kto, sft+dpo, sft+kto, or auto (picks from the data); "
            "default: LORALOOP_RETRAIN_OBJECTIVE."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(help="Curate the data and pick the objective, print the plan, train nothing."),
    ] = False,
) -> None:
    """Build and curate the dataset, train, evaluate against production, promote if better."""
    from loraloop.retraining import RetrainJobs

    settings = get_settings()
    if objective is not None:
        settings.retrain.objective = objective.value
    db = create_db_engine(settings.db.url.get_secret_value())
    if dry_run:
        try:
            print_plan(RetrainJobs(db, settings).plan(alias, new))
        finally:
            db.dispose()
        return
    try:
        with progress_bar() as bar:
            outcome = RetrainJobs(db, settings).run(alias, "manual", new, BarReporter(bar))
    except JobBusy as exc:
        raise CliError(str(exc)) from exc
    finally:
        db.dispose()
    gate = outcome.gate
    assert gate is not None  # a run without a decision raised
    table = Table("metric", "production", "candidate", "gain")
    for name, value in gate.candidate.items():
        base = gate.production[name]
        table.add_row(name, f"{base:.4f}", f"{value:.4f}", f"{value - base:+.4f}")
    console.print(table)
    style = OUTCOME_STYLE.get(outcome.outcome, "")
    console.print(Text.assemble((outcome.summary(), style), f" ({'; '.join(gate.reasons)})"))
    if outcome.objective:
        console.print(f"objective: {outcome.objective['reason']}")
    evidence = outcome.preference.get("evidence")
    if evidence and evidence.get("items"):
        console.print(
            f"held-out preferences ({evidence['items']}): the candidate favours the preferred "
            f"answer more than production on {evidence['won']:.0%}"
        )
    if outcome.decision:
        head, rows = decision_table(outcome.as_record())
        sides = Table(*head, title="adapter or prompt")
        for row in rows:
            sides.add_row(*row)
        console.print(sides)
        console.print(outcome.decision["reason"])
    if outcome.prompt:
        console.print(f"prompt: {outcome.prompt['reason']}")
    console.print(
        f"training: {outcome.train.get('stop_reason')}; gated on the {gate.eval_set} set"
        + (f" ({outcome.golden['items']} items)" if gate.eval_set == "golden" else "")
    )
    console.print(
        f"{outcome.train_examples} train / {outcome.eval_examples} held out, "
        f"dataset {outcome.dataset_hash[:12]}; report: {outcome.run_dir / 'report.html'}"
    )


def print_plan(plan: RunOutcome) -> None:
    """The data a run would see and what it would train, as `retrain run` would."""
    console.print(f"[bold]plan[/bold] for {plan.alias} (dry run: nothing trained)")
    console.print(f"objective: {plan.objective['objective']} ({plan.objective['reason']})")
    curation = plan.curation
    console.print(
        f"chat examples: {plan.train_examples} train / {plan.eval_examples} held out "
        f"({curation.get('input', 0)} in), dataset {plan.dataset_hash[:12]}"
    )
    for name, report in plan.preference.get("data", {}).items():
        sources = ", ".join(f"{k} {v}" for k, v in report["by_source"].items())
        extra = ""
        if "balance" in report:
            b = report["balance"]
            extra = f"; {b['desirable']} desirable, {b['undesirable']} undesirable"
        console.print(
            f"{name}: {report['train']} train / {report['eval']} held out ({sources}){extra}"
        )
    if plan.golden.get("items"):
        console.print(f"gated on the golden set ({plan.golden['items']} items)")


@retrain_app.command("runs")
@friendly
def retrain_runs(
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Recent retraining runs with their outcome (from the job history)."""
    settings = get_settings()
    db = create_db_engine(settings.db.url.get_secret_value())
    try:
        with Session(db) as session:
            runs = recent_runs(session, limit, job="retrain", target=alias)
    finally:
        db.dispose()
    table = Table("job", "alias", "trigger", "started", "took", "status", "outcome", "run")
    for r in runs:
        run_id, _, summary = (r.result or "").partition(": ")
        outcome = summary.partition(" ")[0]  # RunOutcome.summary() starts with it
        table.add_row(
            str(r.id),
            r.target,
            r.trigger,
            f"{r.started_at:%Y-%m-%d %H:%M}",
            "…" if r.seconds is None else f"{r.seconds:.0f}s",
            r.status,
            Text(summary or r.error or "", style=OUTCOME_STYLE.get(outcome, "")),
            run_id,
        )
    console.print(table if runs else "no retraining runs yet")
