"""`loraloop golden`: an alias's fixed evaluation set — list, pin reviewed items, import a
file, unpin. Every retraining run of the alias is gated on it (retrain/gate.py)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from feedback.golden import (
    GoldenError,
    GoldenRow,
    add_rows,
    describe,
    golden_hash,
    golden_items,
    pin,
    unpin,
)
from loraloop.cli_support import CliError, console, friendly
from loraloop.db import create_db_engine
from loraloop.settings import get_settings
from retrain.dataset import read_seed

golden_app = typer.Typer(
    help="Golden sets: the fixed evaluation set of each alias.", no_args_is_help=True
)
Alias = Annotated[str, typer.Argument(help="The alias whose golden set this is.")]


def _session() -> Session:
    settings = get_settings()
    return Session(create_db_engine(settings.db.url.get_secret_value()))


@golden_app.command("list")
@friendly
def golden_list(alias: Alias) -> None:
    """The items of the set and its hash (which every run record names)."""
    with _session() as session:
        items = golden_items(session, alias)
    table = Table("key", "source", "template", "labels", "question", "reference")
    for item in items:
        d = describe(item)
        table.add_row(
            d["key"], d["source"], d["template"] or "", ",".join(d["labels"]),
            d["question"][:60], d["reference"][:60],
        )  # fmt: skip
    console.print(table if items else f"{alias} has no golden set yet")
    if items:
        console.print(f"{len(items)} items, sha256 {golden_hash(items)}")


@golden_app.command("pin")
@friendly
def golden_pin(
    alias: Alias,
    interaction_ids: Annotated[list[str], typer.Argument(help="Reviewed interactions.")],
) -> None:
    """Add reviewed interactions: the question and its reviewed answer, frozen now."""
    settings = get_settings()
    with _session() as session:
        for iid in interaction_ids:
            try:
                pin(
                    session,
                    alias,
                    iid,
                    "cli",
                    settings.feedback.golden_min_score,
                    settings.feedback.pii_patterns,
                )
            except GoldenError as exc:
                raise CliError(str(exc)) from exc
            console.print(f"pinned {iid} to {alias}")


@golden_app.command("import")
@friendly
def golden_import(
    alias: Alias,
    path: Annotated[Path, typer.Argument(help="Chat JSONL: {messages, template?, labels?}.")],
) -> None:
    """Add a file's conversations (the last turn is the reference answer)."""
    rows = [GoldenRow(ex.id, list(ex.messages), ex.template, ex.labels) for ex in read_seed(path)]
    with _session() as session:
        added, skipped = add_rows(session, alias, rows)
        total = len(golden_items(session, alias))
    console.print(f"{added} added, {skipped} already there; {alias} has {total} golden items")


@golden_app.command("unpin")
@friendly
def golden_unpin(alias: Alias, key: Annotated[str, typer.Argument()]) -> None:
    """Remove one item (an interaction id, or "<file>:<line>")."""
    with _session() as session:
        if not unpin(session, alias, key):
            raise CliError(f"{key} is not in the golden set of {alias}")
    console.print(f"removed {key} from {alias}")
