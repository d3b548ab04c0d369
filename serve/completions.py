"""What the gateway reads from an engine's completion: the path per endpoint, and the
fields a capture record keeps from an answer, unstreamed (the client's and a shadow's) or
streamed chunk by chunk. A streamed tool call arrives in pieces (its id and name first,
then its arguments a fragment at a time, keyed by `index`): the record keeps the call
whole, as the unstreamed answer would have carried it."""

import time
from typing import Any


def engine_path(endpoint: str) -> str:
    return "chat/completions" if endpoint == "chat" else "completions"


def answer_fields(data: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """An answer made of calls alone comes with `content: null`; its text is kept as ""
    (as a streamed one's is), so it is an answer like any other: reviewed, rated, drifted."""
    choice = (data.get("choices") or [{}])[0]
    usage = data.get("usage") or {}
    message = choice.get("message") or {}
    calls = message.get("tool_calls") or None
    text = message.get("content") if endpoint == "chat" else choice.get("text")
    return {
        "response_text": "" if text is None and calls else text,
        "tool_calls": calls,
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }


def note_chunk(
    chunk: dict[str, Any], endpoint: str, record: dict[str, Any], parts: list[str], started: float
) -> None:
    """What a streamed chunk adds to the capture record: text, tool calls, first-token
    time, usage. Only the first choice is kept, as `answer_fields` keeps it."""
    for choice in chunk.get("choices") or []:
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        text = delta.get("content") if endpoint == "chat" else choice.get("text")
        calls = delta.get("tool_calls") if endpoint == "chat" else None
        if (text or calls) and "ttft_ms" not in record:
            record["ttft_ms"] = (time.perf_counter() - started) * 1000
        if text:
            parts.append(text)
        for call in calls or []:
            merge_tool_call(record.setdefault("tool_calls", []), call)
        if choice.get("finish_reason"):
            record["finish_reason"] = choice["finish_reason"]
    if usage := chunk.get("usage"):
        record.update(
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )


def merge_tool_call(calls: list[dict[str, Any]], delta: dict[str, Any]) -> None:
    """Fold one streamed tool-call delta into the calls seen so far: the id, type and
    name are set once, argument fragments are appended in order."""
    index = delta.get("index", len(calls))
    while len(calls) <= index:
        calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    if delta.get("id"):
        call["id"] = delta["id"]
    if delta.get("type"):
        call["type"] = delta["type"]
    function = delta.get("function") or {}
    if function.get("name"):
        call["function"]["name"] += function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]
