"""Reading what runs left behind (run.json, report.html, loss.svg, eval_predictions.jsonl)
for pages and tools. Names come from URLs, so every path is checked to stay inside the runs
directory: an alias or run id that is not a plain name gives None, never a file elsewhere."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
FILES = {"report.html": "text/html", "loss.svg": "image/svg+xml"}


def run_dir(runs_dir: Path, alias: str, run_id: str) -> Path | None:
    if not (NAME.match(alias) and NAME.match(run_id)):
        return None
    root = runs_dir.resolve()
    path = (root / alias / run_id).resolve()
    return path if path.is_relative_to(root) and path.is_dir() else None


def read_run(runs_dir: Path, alias: str, run_id: str) -> dict[str, Any] | None:
    """The run's record, or None when it has none (yet)."""
    path = run_dir(runs_dir, alias, run_id)
    if path is None or not (path / "run.json").is_file():
        return None
    try:
        record: dict[str, Any] = json.loads((path / "run.json").read_text())
    except ValueError:
        return None
    return record


def run_file(runs_dir: Path, alias: str, run_id: str, name: str) -> Path | None:
    """One of the run's viewable files (FILES), if it exists."""
    path = run_dir(runs_dir, alias, run_id)
    if path is None or name not in FILES or not (path / name).is_file():
        return None
    return path / name


def predictions(runs_dir: Path, alias: str, run_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """The evaluation's answers, each with a word diff of both sides against the reference."""
    path = run_dir(runs_dir, alias, run_id)
    if path is None or not (path / "eval_predictions.jsonl").is_file():
        return []
    rows = []
    for line in (path / "eval_predictions.jsonl").read_text().splitlines()[:limit]:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        reference = str(row.get("reference") or "")
        for side in ("production", "candidate"):
            row[f"{side}_diff"] = word_diff(reference, str(row.get(side) or ""))
        rows.append(row)
    return rows


def word_diff(reference: str, answer: str) -> list[tuple[str, str]]:
    """(kind, words) pieces of `answer` against `reference`: same, added, missing."""
    ref, ans = reference.split(), answer.split()
    pieces = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=ref, b=ans, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("same", " ".join(ans[j1:j2])))
            continue
        if i2 > i1:
            pieces.append(("missing", " ".join(ref[i1:i2])))
        if j2 > j1:
            pieces.append(("added", " ".join(ans[j1:j2])))
    return pieces
