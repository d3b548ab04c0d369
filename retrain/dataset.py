"""Training examples: reviewed production traffic (corrections, and responses reviewers
scored high) plus optional seed files, each with a stable id and a content hash."""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from feedback.export import ExportFilters, export_dataset
from feedback.tool_calls import ToolDef, answer_text

ROLES = {"system", "user", "assistant", "tool"}


class DatasetError(ValueError):
    """Input that cannot become training data, worded for the user."""


@dataclass(frozen=True)
class Example:
    id: str  # an interaction id, or "<file>:<line>" for seed rows
    messages: tuple[dict[str, Any], ...]
    source: str  # feedback, seed, golden
    template: str | None = None
    labels: tuple[str, ...] = ()  # reviewers' labels, or a seed row's "labels"
    tools: tuple[dict[str, Any], ...] = ()  # the tools the conversation declared

    @property
    def prompt(self) -> list[dict[str, Any]]:
        return list(self.messages[:-1])

    @property
    def answer(self) -> str:
        """The answer to learn as text; its tool calls, if any, in canonical form."""
        last = self.messages[-1]
        return answer_text(last.get("content"), last.get("tool_calls"))

    def text(self) -> str:
        turns = [f"{m['role']}: {m.get('content') or ''}" for m in self.messages[:-1]]
        return "\n".join([*turns, f"assistant: {self.answer}"])


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
            tuple(row.get("tools") or ()),
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


def check_turns(turns: Any, where: str, name: str = "messages") -> tuple[dict[str, Any], ...]:
    """Chat turns with a known role and text each (an assistant turn may instead carry
    `tool_calls`, a tool turn names its `tool_call_id`), as plain dicts of those keys."""
    of = "" if name == "messages" else f" of '{name}'"
    clean = []
    for turn in turns:
        calls = turn.get("tool_calls") if isinstance(turn, dict) else None
        content = turn.get("content") if isinstance(turn, dict) else None
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ROLES
            or not (isinstance(content, str) or (calls and content is None))
        ):
            raise DatasetError(f"{where}: each turn{of} needs a role {sorted(ROLES)} and text")
        kept: dict[str, Any] = {"role": turn["role"], "content": content or ""}
        if calls:
            if turn["role"] != "assistant" or not isinstance(calls, list):
                raise DatasetError(f"{where}: only an assistant turn{of} has a tool_calls list")
            kept["tool_calls"] = calls
        if turn["role"] == "tool" and turn.get("tool_call_id"):
            kept["tool_call_id"] = str(turn["tool_call_id"])
        clean.append(kept)
    return tuple(clean)


def check_tools(tools: Any, where: str) -> tuple[dict[str, Any], ...]:
    """A row's `tools`: OpenAI function definitions whose parameters are JSON schemas."""
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise DatasetError(f"{where}: 'tools' must be a list of function definitions")
    checked = []
    for n, tool in enumerate(tools):
        try:
            checked.append(ToolDef.model_validate(tool).model_dump(exclude_none=True))
        except ValidationError as exc:
            problem = exc.errors()[0]
            at = ".".join(str(p) for p in problem["loc"])
            raise DatasetError(f"{where}: tools[{n}].{at}: {problem['msg']}") from None
    return tuple(checked)


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
        tools = check_tools(row.get("tools"), where)
        examples.append(
            Example(f"{path.name}:{number}", clean, "seed", template, tuple(labels), tools)
        )
    return examples


def content_hash(examples: list[Example]) -> str:
    """sha256 over ids and messages, order-independent: the dataset's version."""
    digest = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: e.id):
        item = [ex.id, ex.messages, ex.tools] if ex.tools else [ex.id, ex.messages]
        digest.update(json.dumps(item, sort_keys=True).encode())
    return digest.hexdigest()
