"""Held-out answers from the real engine, for the candidate and for production.

The candidate is loaded on the engine under a name of its own for the evaluation and
unloaded after; production answers under its registry engine name (loading it is
idempotent), or as the base model for an alias's first version. Greedy decoding, so that
the two sides differ by their weights only.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from feedback.tool_calls import answer_text
from retrain.dataset import Example

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # answered, total


@dataclass(frozen=True)
class Asked:
    texts: list[str]
    prompt_tokens: float  # mean per request
    completion_tokens: float
    seconds: float  # wall clock per request, at the evaluator's concurrency


class EvaluationError(RuntimeError):
    """The engine could not load or answer; production is left as it is."""


class Evaluator:
    def __init__(
        self,
        engine_url: str,
        max_tokens: int = 128,
        concurrency: int = 16,
        timeout_s: float = 300,
        api_key: str | None = None,
    ) -> None:
        self.engine_url = engine_url.rstrip("/")
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def answers(
        self,
        model: str,
        examples: Sequence[Example],
        progress: Progress | None = None,
        max_tokens: int | None = None,
    ) -> list[str]:
        return self.ask(model, examples, progress, max_tokens).texts

    def ask(
        self,
        model: str,
        examples: Sequence[Example],
        progress: Progress | None = None,
        max_tokens: int | None = None,
    ) -> "Asked":
        """Answers with what they cost: tokens per request from the engine's usage, and
        wall-clock seconds per request at this evaluator's concurrency. `max_tokens`
        overrides the evaluator's answer length for this call."""
        began = time.perf_counter()
        bodies = chat_many(
            self.engine_url,
            model,
            [ex.prompt for ex in examples],
            max_tokens or self.max_tokens,
            self.concurrency,
            self.timeout_s,
            progress,
            self.headers,
            tools=[list(ex.tools) for ex in examples],
        )
        seconds = time.perf_counter() - began
        messages = [b["choices"][0]["message"] for b in bodies]
        usage = [b.get("usage") or {} for b in bodies]
        n = max(1, len(bodies))
        return Asked(
            [answer_text(m.get("content"), m.get("tool_calls")) for m in messages],
            sum(int(u.get("prompt_tokens") or 0) for u in usage) / n,
            sum(int(u.get("completion_tokens") or 0) for u in usage) / n,
            seconds / n,
        )

    def context_length(self, model: str) -> int | None:
        """The engine's context window for `model` (vLLM's /v1/models says it), or None."""
        try:
            response = httpx.get(
                f"{self.engine_url}/v1/models", timeout=self.timeout_s, headers=self.headers
            )
            cards = response.json().get("data") or []
        except (httpx.HTTPError, ValueError):
            return None
        lengths = [c.get("max_model_len") for c in cards if c.get("id") == model]
        lengths = lengths or [c.get("max_model_len") for c in cards]
        return next((int(x) for x in lengths if x), None)

    def load(self, name: str, path: Path | str) -> None:
        response = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        if response.status_code != 200 and "already been loaded" not in response.text:
            raise EvaluationError(
                f"engine could not load {name} from {path}: "
                f"{response.status_code} {response.text[:300]}"
            )

    def unload(self, name: str) -> None:
        response = self._post("/v1/unload_lora_adapter", {"lora_name": name})
        if response.status_code != 200:
            log.warning("could not unload %s: %s", name, response.text[:300])

    def _post(self, path: str, body: dict[str, str]) -> httpx.Response:
        try:
            return httpx.post(
                f"{self.engine_url}{path}", json=body, timeout=self.timeout_s, headers=self.headers
            )
        except httpx.HTTPError as exc:
            raise EvaluationError(f"engine {self.engine_url} did not answer: {exc!r}") from None


CONNECTION_RETRIES = 2


def chat_many(
    url: str,
    model: str,
    conversations: Sequence[list[dict[str, str]]],
    max_tokens: int,
    concurrency: int,
    timeout_s: float = 300,
    progress: Progress | None = None,
    headers: dict[str, str] | None = None,
    tools: Sequence[list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Greedy chat completions for every conversation, `concurrency` at a time (the engine
    batches them), in order; the response bodies. Any failure is an EvaluationError.
    `tools[i]`, when not empty, is sent with conversation i (`tool_choice` auto: whether
    to call is part of what is judged)."""
    return asyncio.run(
        _chat_many(
            url, model, conversations, max_tokens, concurrency, timeout_s, progress, headers, tools
        )
    )


async def _chat_many(
    url: str,
    model: str,
    conversations: Sequence[list[dict[str, str]]],
    max_tokens: int,
    concurrency: int,
    timeout_s: float,
    progress: Progress | None,
    headers: dict[str, str] | None,
    tools: Sequence[list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    gate, done = asyncio.Semaphore(concurrency), 0

    async def one(
        client: httpx.AsyncClient, messages: list[dict[str, str]], declared: list[dict[str, Any]]
    ) -> dict[str, Any]:
        nonlocal done
        body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if declared:
            body["tools"] = declared
        async with gate:
            response = await _post(client, f"{url}/v1/chat/completions", body)
        if response.status_code != 200:
            raise EvaluationError(
                f"{url} answered {response.status_code} for {model}: {response.text[:300]}"
            )
        done += 1
        if progress:
            progress(done, len(conversations))
        return dict(response.json())

    async with httpx.AsyncClient(timeout=timeout_s, headers=headers) as client:
        declared = list(tools) if tools is not None else [[] for _ in conversations]
        return list(
            await asyncio.gather(
                *(one(client, m, t) for m, t in zip(conversations, declared, strict=True))
            )
        )


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    """POST, sent again (after a short wait) when the connection broke before any answer
    came back, as the openai SDK does: a pooled connection the server has just closed fails
    that way, and a shed answer would fail a whole evaluation. A timeout is not retried: the
    server may still be working on it."""
    for attempt in range(CONNECTION_RETRIES + 1):
        try:
            return await client.post(url, json=body)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            if attempt == CONNECTION_RETRIES:
                raise EvaluationError(f"{url} did not answer: {exc!r}") from None
            await asyncio.sleep(0.5 * 2**attempt)
        except httpx.HTTPError as exc:
            raise EvaluationError(f"{url} did not answer: {exc!r}") from None
    raise AssertionError("unreachable")
