"""`loraloop dataset export|preferences`: reviewed traffic to chat or preference JSONL,
with a manifest."""

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from feedback.export import ExportFilters, export_dataset
from feedback.signals import Thresholds, export_judged, export_pairs
from loraloop.cli_support import console, friendly
from loraloop.db import create_db_engine
from loraloop.settings import get_settings


class PreferenceKind(StrEnum):
    pairs = "pairs"
    judged = "judged"


dataset_app = typer.Typer(help="Training datasets from reviewed traffic.", no_args_is_help=True)


@dataset_app.command("export")
@friendly
def export(
    out: Annotated[Path, typer.Option(help="JSONL file to write; the manifest goes beside it.")],
    alias: str | None = None,
    adapter_version: int | None = None,
    template: str | None = None,
    since: Annotated[datetime | None, typer.Option(help="ISO time, inclusive.")] = None,
    until: Annotated[datetime | None, typer.Option(help="ISO time, exclusive.")] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Mean score for uncorrected rows.")
    ] = None,
    has_correction: Annotated[bool | None, typer.Option("--has-correction/--no-correction")] = None,
    max_score_spread: Annotated[int | None, typer.Option(help="Agreement filter.")] = None,
) -> None:
    """Export reviewed interactions (PII scrubbed) for training."""
    settings = get_settings()
    filters = ExportFilters(
        alias=alias,
        adapter_version=adapter_version,
        template=template,
        since=since,
        until=until,
        min_score=min_score,
        has_correction=has_correction,
        max_score_spread=max_score_spread,
    )
    engine = create_db_engine(settings.db.url.get_secret_value())
    with Session(engine) as session:
        result = export_dataset(session, filters, settings.feedback.pii_patterns)
    engine.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.jsonl())
    manifest = out.with_suffix(".manifest.json")
    manifest.write_text(json.dumps(result.manifest, indent=2) + "\n")
    counts = result.manifest["counts"]
    console.print(f"{counts['rows']} rows ({counts['from_corrections']} corrections) -> {out}")
    console.print(
        f"manifest -> {manifest}; PII scrubbed: {result.manifest['pii_scrubbed'] or 'none'}"
    )


@dataset_app.command("preferences")
@friendly
def preferences(
    out: Annotated[Path, typer.Option(help="JSONL file to write; the manifest goes beside it.")],
    alias: str | None = None,
    kind: Annotated[
        PreferenceKind,
        typer.Option(help="pairs: corrections + pairwise choices (DPO); judged: KTO rows."),
    ] = PreferenceKind.pairs,
) -> None:
    """Export preference data: judged pairs (prompt, chosen, rejected) for DPO, or every
    reviewed or rated answer (prompt, completion, label) for KTO."""
    settings = get_settings()
    engine = create_db_engine(settings.db.url.get_secret_value())
    pii = settings.feedback.pii_patterns
    try:
        with Session(engine) as session:
            if kind is PreferenceKind.judged:
                thresholds = Thresholds.from_settings(settings.feedback)
                result = export_judged(session, alias, thresholds, pii)
            else:
                result = export_pairs(session, alias, pii)
    finally:
        engine.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.jsonl())
    path = out.with_suffix(".manifest.json")
    path.write_text(json.dumps(result.manifest, indent=2) + "\n")
    counts = result.manifest["counts"]
    if kind is PreferenceKind.judged:
        detail = f"{counts['desirable']} desirable, {counts['undesirable']} undesirable"
    else:
        detail = ", ".join(f"{n} from {source}" for source, n in counts["by_source"].items())
    console.print(f"{counts['rows']} {kind.value} rows ({detail}) -> {out}")
    console.print(f"manifest -> {path}; PII scrubbed: {result.manifest['pii_scrubbed'] or 'none'}")
