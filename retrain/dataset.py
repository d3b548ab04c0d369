"""Training examples: reviewed production traffic (corrections, and responses reviewers
scored high) plus optional seed files, each with a stable id and a content hash."""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from feedback.export import ExportFilters, export_dataset

ROLES = {"system", "user", "assistant"}


class DatasetError(ValueError):
    """Input that cannot become training data, worded for the user."""


@dataclass(frozen=True)
class Example:
    id: str  # an interaction id, or "<file>:<line>" for seed rows
    messages: tuple[dict[str, str], ...]
    source: str  # feedback, seed, golden
    template: str | None = None
    labels: tuple[str, ...] = ()  # reviewers' labels, or a seed row's "labels"

    @property
    def prompt(self) -> list[dict[str, str]]:
        return list(self.messages[:-1])

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

    def text(self) -> str:
        return "\n".join(f"{m['role']}: {m['content']}" for m in self.messages)


def from_feedback(session: Session, alias: str | None, min_score: float) -> list[Example]:
    """Reviewed interactions of the alias (PII scrubbed by the export)."""
    export = export_dataset(session, ExportFilters(alias=alias, min_score=min_score))
    ids = export.manifest["row_ids"]
    return [
        Example(
            iid,
            tuple(row["messages"]),
            "feedback",
            row.get("template"),
            tuple(row.get("labels") or ()),
        )
        for iid, row in zip(ids, export.rows, strict=True)
    ]


def jsonl_lines(path: Path, what: str) -> Iterator[tuple[str, int, Any]]:
    """(where, line number, parsed value) for each non-blank line of a JSONL file; a
    missing file or a line that is not JSON stops with the file and line."""
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist")
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not JSON ({exc.msg})") from exc


def check_turns(turns: Any, where: str, name: str = "messages") -> tuple[dict[str, str], ...]:
    """Chat turns with a known role and text each, as plain {role, content} dicts."""
    of = "" if name == "messages" else f" of '{name}'"
    for turn in turns:
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ROLES
            or not isinstance(turn.get("content"), str)
        ):
            raise DatasetError(f"{where}: each turn{of} needs a role {sorted(ROLES)} and text")
    return tuple({"role": t["role"], "content": t["content"]} for t in turns)


def read_seed(path: Path) -> list[Example]:
    """A chat JSONL file: one {"messages": [...]} per line ending with the assistant's turn."""
    examples = []
    for where, number, row in jsonl_lines(path, "seed file"):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or len(messages) < 2:
            raise DatasetError(f"{where}: needs a 'messages' list of at least two turns")
        clean = check_turns(messages, where)
        if messages[-1]["role"] != "assistant":
            raise DatasetError(f"{where}: the last turn must be the assistant's answer")
        labels = row.get("labels") or ([row["label"]] if row.get("label") else [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DatasetError(f"{where}: 'labels' must be a list of strings")
        template = row.get("template")
        if template is not None and not isinstance(template, str):
            raise DatasetError(f"{where}: 'template' must be a string")
        examples.append(Example(f"{path.name}:{number}", clean, "seed", template, tuple(labels)))
    return examples


def content_hash(examples: list[Example]) -> str:
    """sha256 over ids and messages, order-independent: the dataset's version."""
    digest = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: e.id):
        digest.update(json.dumps([ex.id, ex.messages], sort_keys=True).encode())
    return digest.hexdigest()
