"""What a capture record keeps of an answer: tool calls whole, streamed or not."""

import json
import time
from typing import Any

from serve.completions import answer_fields, note_chunk

CALLS = [
    {"id": "call_a", "type": "function", "function": {"name": "lookup_order", "arguments": ""}},
    {"id": "call_b", "type": "function", "function": {"name": "refund", "arguments": ""}},
]


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def test_streamed_tool_calls_are_kept_whole_as_the_unstreamed_answer_carries_them() -> None:
    """Two parallel calls, as vLLM streams them: id and name first, then the arguments in
    fragments, interleaved by `index`; a second choice (n=2) is not mixed in."""
    args = ['{"order_id": "A-', '1"}'], ['{"amount"', ": 5}"]
    stream = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [{"index": 0, **CALLS[0]}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[0][0]}}]}),
        chunk({"tool_calls": [{"index": 1, **CALLS[1]}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[0][1]}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": args[1][0]}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "x"}}]}, index=1),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": args[1][1]}}]}),
        chunk({}, finish="tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
    ]
    record: dict[str, Any] = {}
    parts: list[str] = []
    for c in stream:
        note_chunk(c, "chat", record, parts, time.perf_counter())
    whole = [
        {**CALLS[i], "function": {**CALLS[i]["function"], "arguments": "".join(args[i])}}
        for i in (0, 1)
    ]
    assert record["tool_calls"] == whole
    assert [json.loads(c["function"]["arguments"]) for c in whole] == [
        {"order_id": "A-1"},
        {"amount": 5},
    ]
    assert record["finish_reason"] == "tool_calls" and record["ttft_ms"] >= 0
    assert parts == [] and record["completion_tokens"] == 4

    unstreamed = {"choices": [{"message": {"content": None, "tool_calls": whole}}]}
    assert answer_fields(unstreamed, "chat")["tool_calls"] == record["tool_calls"]


def test_a_plain_answer_has_no_tool_calls() -> None:
    record: dict[str, Any] = {}
    note_chunk(chunk({"content": "Hello"}, finish="stop"), "chat", record, [], 0.0)
    assert "tool_calls" not in record
    plain = {"choices": [{"message": {"content": "Hello", "tool_calls": []}}]}
    assert answer_fields(plain, "chat")["tool_calls"] is None
