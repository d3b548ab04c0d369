"""What the gateway reads from an engine's completion: the path per endpoint, and the
fields a capture record keeps from an answer, unstreamed (the client's and a shadow's) or
streamed chunk by chunk."""

import time
from typing import Any


def engine_path(endpoint: str) -> str:
    return "chat/completions" if endpoint == "chat" else "completions"


def answer_fields(data: dict[str, Any], endpoint: str) -> dict[str, Any]:
    choice = (data.get("choices") or [{}])[0]
    usage = data.get("usage") or {}
    message = choice.get("message") or {}
    return {
        "response_text": message.get("content") if endpoint == "chat" else choice.get("text"),
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }


def note_chunk(
    chunk: dict[str, Any], endpoint: str, record: dict[str, Any], parts: list[str], started: float
) -> None:
    """What a streamed chunk adds to the capture record: text, first-token time, usage."""
    for choice in chunk.get("choices") or []:
        text = (
            (choice.get("delta") or {}).get("content") if endpoint == "chat" else choice.get("text")
        )
        if text:
            if "ttft_ms" not in record:
                record["ttft_ms"] = (time.perf_counter() - started) * 1000
            parts.append(text)
        if choice.get("finish_reason"):
            record["finish_reason"] = choice["finish_reason"]
    if usage := chunk.get("usage"):
        record.update(
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )
