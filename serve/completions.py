"""What the gateway reads from an engine's completion: the path per endpoint, and the
fields a capture record keeps from an unstreamed answer (the client's and a shadow's)."""

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
