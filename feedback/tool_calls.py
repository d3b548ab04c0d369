"""Tools and the calls a model makes to them: the checks every layer shares.

A tool is OpenAI's function definition, whose `parameters` is a JSON schema; a call names
a function and carries its arguments as a JSON string. A call is valid when the function
is one of the tools the request declared, its arguments parse as a JSON object, and they
validate against that function's schema. Templates declare tools with these shapes, drift
reports count valid calls, curation drops invalid ones and the gate scores calls exactly.
"""

import json
from collections.abc import Iterable
from typing import Any, Literal

from jsonschema import Draft202012Validator, SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"parameters is not a JSON schema: {exc.message}") from None
        return schema


class ToolDef(BaseModel):
    """One tool, as `tools` in an OpenAI chat request carries it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"] = "function"
    function: FunctionDef


def tool_names(tools: Iterable[dict[str, Any]] | None) -> list[str]:
    return [
        str((tool.get("function") or {}).get("name"))
        for tool in tools or []
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]


def call_problem(call: dict[str, Any], tools: list[dict[str, Any]] | None) -> str | None:
    """Why `call` is not a valid call of one of `tools`, or None when it is."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        return "the call names no function"
    name = function["name"]
    schemas = {
        t["function"]["name"]: t["function"].get("parameters") or {"type": "object"}
        for t in tools or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
    }
    if name not in schemas:
        return f"{name!r} is not one of the declared tools ({', '.join(schemas) or 'none'})"
    raw = function.get("arguments")
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        return f"{name}: the arguments are not JSON ({exc.msg})"
    if not isinstance(arguments, dict):
        return f"{name}: the arguments are not a JSON object"
    try:
        error = next(iter(Draft202012Validator(schemas[name]).iter_errors(arguments)), None)
    except SchemaError as exc:
        return f"{name}: its declared schema is not valid ({exc.message})"
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "arguments"
        return f"{name}: {where}: {error.message}"
    return None


def arguments_of(call: dict[str, Any]) -> Any:
    """A call's arguments as data (None when they do not parse): for exact comparison,
    where key order and spacing must not count."""
    raw = (call.get("function") or {}).get("arguments")
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None


def same_calls(a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None) -> bool:
    """The same functions with the same arguments as data, in the same order."""

    def key(calls: list[dict[str, Any]] | None) -> list[tuple[Any, str]]:
        return [
            ((c.get("function") or {}).get("name"), json.dumps(arguments_of(c), sort_keys=True))
            for c in calls or []
        ]

    return key(a) == key(b)


def correction_problem(
    calls: list[dict[str, Any]], answered: list[dict[str, Any]] | None, tools: Any
) -> str | None:
    """Why corrected tool calls cannot be stored, or None: every call must be valid
    against the request's tools, and together they must differ from the answer's."""
    if not tools:
        return "the request declared no tools, so its answer cannot be corrected to a tool call"
    if same_calls(calls, answered):
        return "the corrected tool calls repeat the answer's: send the score alone to approve it"
    for n, call in enumerate(calls, 1):
        if (problem := call_problem(call, tools)) is not None:
            return f"tool call {n}: {problem}"
    return None


def shown(calls: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """For pages: each call's function and its arguments as indented JSON (the raw text
    when it does not parse: a reviewer must see what the model wrote)."""
    out = []
    for call in calls or []:
        function = call.get("function") or {}
        arguments = arguments_of(call)
        text = (
            json.dumps(arguments, indent=2, ensure_ascii=False)
            if arguments is not None
            else str(function.get("arguments") or "")
        )
        out.append({"name": str(function.get("name") or ""), "arguments": text})
    return out


def calls_from_form(
    names: list[str], arguments: list[str], answered: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """A reviewer's edited calls, in order; a slot left without a function is dropped.
    Raises ValueError naming the slot whose arguments are not a JSON object."""
    calls = []
    for n, (name, text) in enumerate(zip(names, arguments, strict=False), 1):
        if not name.strip():
            continue
        try:
            parsed = json.loads(text.strip() or "{}")
        except ValueError as exc:
            raise ValueError(f"tool call {n}: the arguments are not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"tool call {n}: the arguments must be a JSON object")
        before = (answered or [])[n - 1] if n <= len(answered or []) else {}
        calls.append(
            {
                "id": before.get("id") or f"call_review_{n}",
                "type": "function",
                "function": {"name": name.strip(), "arguments": json.dumps(parsed)},
            }
        )
    return calls


CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"


def answer_text(content: str | None, calls: list[dict[str, Any]] | None) -> str:
    """An answer as one string: its text, then each call as `<tool_call>{"arguments": …,
    "name": …}</tool_call>` with sorted keys, so answers making the same calls read the
    same, whatever the key order or spacing the model wrote. Without calls: the text."""
    if not calls:
        return content or ""
    parts = [content.strip()] if content and content.strip() else []
    for call in calls:
        name = (call.get("function") or {}).get("name")
        data = json.dumps({"name": name, "arguments": arguments_of(call)}, sort_keys=True)
        parts.append(f"{CALL_OPEN}{data}{CALL_CLOSE}")
    return "\n".join(parts)


def calls_in(text: str) -> list[tuple[Any, Any]]:
    """(name, arguments) of each call an `answer_text` carries, in order."""
    found = []
    for chunk in text.split(CALL_OPEN)[1:]:
        try:
            data = json.loads(chunk.split(CALL_CLOSE)[0])
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        found.append((data.get("name"), data.get("arguments")))
    return found
