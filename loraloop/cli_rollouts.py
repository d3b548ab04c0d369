"""`loraloop rollouts`: list rollouts and their decisions (from the database), start and
abort them (through the gateway's admin API, which loads the version on every engine)."""

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session

from loraloop.cli_admin import call_gateway
from loraloop.cli_support import console, friendly
from loraloop.db import create_db_engine
from loraloop.settings import get_settings
from serve.rollouts import decisions, recent

rollouts_app = typer.Typer(
    help="Rollouts judged on live traffic: list, start, abort.", invoke_without_command=True
)


@rollouts_app.callback()
@friendly
def main(
    ctx: typer.Context,
    alias: Annotated[str | None, typer.Option(help="Only this alias's rollouts.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent first.")] = 20,
) -> None:
    """With no command: the recent rollouts, each with its decisions."""
    if ctx.invoked_subcommand is not None:
        return
    engine = create_db_engine(get_settings().db.url.get_secret_value())
    try:
        with Session(engine) as session:
            rows = [(r, decisions(session, r.id or 0)) for r in recent(session, alias, limit)]
    finally:
        engine.dispose()
    if not rows:
        console.print("no rollouts yet")
        return
    for rollout, taken in rows:
        steps = " -> ".join(f"{s:g}%" for s in rollout.policy["steps"])
        what = "template " if rollout.kind == "template" else ""
        console.print(
            f"[bold]rollout {rollout.id}[/bold] {what}{rollout.alias}@{rollout.version} "
            f"(over v{rollout.baseline_version}): {rollout.state}, step {rollout.step + 1} "
            f"of {steps}"
        )
        table = Table("when", "step", "share", "action", "reason")
        for d in taken:
            table.add_row(
                f"{d.created_at:%F %T}", str(d.step + 1), f"{d.share:g}%", d.action, d.reason
            )
        if rollout.state == "running" and rollout.last_check:
            check = rollout.last_check
            table.add_row(check["at"][:19].replace("T", " "), str(rollout.step + 1), "",
                          f"({check['outcome']})", check["reason"])  # fmt: skip
        console.print(table)


@rollouts_app.command("start")
@friendly
def start(
    alias: str,
    version: int,
    steps: Annotated[str | None, typer.Option(help="Canary shares in percent: 5,25,50")] = None,
    min_requests: Annotated[int | None, typer.Option(help="Canary requests per step.")] = None,
    template: Annotated[
        bool, typer.Option("--template", help="ALIAS is a prompt template: roll out its VERSION.")
    ] = False,
) -> None:
    """Roll VERSION out over ALIAS's production (or a prompt template's), step by step."""
    body: dict[str, Any] = {"version": version, "min_requests": min_requests}
    if steps:
        try:
            body["steps"] = [float(s) for s in steps.split(",")]
        except ValueError:
            raise typer.BadParameter(f"--steps {steps!r}: numbers separated by commas") from None
    kind = "templates" if template else "aliases"
    out = call_gateway("POST", f"/admin/{kind}/{alias}/rollouts", body)
    console.print(f"rollout {out['id']}: {out['decisions'][-1]['reason']}")


@rollouts_app.command("abort")
@friendly
def abort(rollout_id: int) -> None:
    """Stop a running rollout: its canary share goes to 0 at once."""
    out = call_gateway("POST", f"/admin/rollouts/{rollout_id}/abort")
    console.print(f"rollout {out['id']}: {out['state']}")
