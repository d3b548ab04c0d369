"""LLM-as-judge: an OpenAI-compatible model says which of two answers is better.

The rubric is a prompt template (prompt_templates/judge-pairwise.yaml), versioned like any
other. Each pair is judged twice with the answers swapped, because judges prefer a
position; a win counts only when both orders agree, anything else is a tie (0.5). The
verdict is read from the first token's log-probabilities of "A" and "B" (a small judge
rarely writes a clean letter), falling back to the text. Before anyone trusts it, its
agreement with human reviews is measured on pairs the reviewers ordered by their scores.
"""

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from retrain.evaluate import EvaluationError
from serve.templates import TemplateSpec, TemplateStore, load_spec

log = logging.getLogger(__name__)
QUESTION = "Which answer is better, A or B?"
LETTER = re.compile(r"\b([AB])\b")


@dataclass(frozen=True)
class Pair:
    question: str
    reference: str
    first: str  # the candidate's answer (or the human-preferred one, for agreement)
    second: str


@dataclass(frozen=True)
class Agreement:
    """How often the judge orders a pair as the reviewers' scores did."""

    pairs: int
    agreed: int
    ties: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None

    def as_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "agreed": self.agreed, "ties": self.ties, "rate": self.rate}


def load_rubric(name: str, db: Any | None, templates_dir: Path | None) -> tuple[TemplateSpec, str]:
    """The rubric template and where it came from: the database's latest version, else the
    template file (a run started before any gateway synced the templates)."""
    if db is not None:
        with Session(db) as session:
            found = TemplateStore().get(session, name)
        if found is not None:
            row, spec = found
            return spec, f"{name}@{row.version}"
    path = (templates_dir or Path("prompt_templates")) / f"{name}.yaml"
    if not path.is_file():
        raise EvaluationError(f"judge template {name!r} is neither in the database nor {path}")
    return load_spec(path), f"{name} ({path})"


class Judge:
    def __init__(
        self,
        url: str,
        model: str,
        rubric: TemplateSpec,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 300,
        source: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.source = source  # which rubric version judged, for the run record
        self.model = model
        self.rubric = rubric
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._templates = TemplateStore()
        self._transport = transport

    def compare(self, pairs: Sequence[Pair]) -> list[float]:
        """Per pair, the first answer's share: 1 (better in both orders), 0, or 0.5."""
        asks = [(p, False) for p in pairs] + [(p, True) for p in pairs]
        verdicts = asyncio.run(self._all(asks))
        scores = []
        for straight, swapped in zip(verdicts[: len(pairs)], verdicts[len(pairs) :], strict=True):
            first_wins = (straight == "A") + (swapped == "B")
            first_loses = (straight == "B") + (swapped == "A")
            scores.append(1.0 if first_wins == 2 else 0.0 if first_loses == 2 else 0.5)
        return scores

    def agreement(self, pairs: Sequence[Pair]) -> Agreement:
        """`first` is the answer reviewers scored higher in each pair."""
        scores = self.compare(pairs) if pairs else []
        return Agreement(len(scores), sum(s == 1.0 for s in scores), sum(s == 0.5 for s in scores))

    def messages(self, pair: Pair, swapped: bool) -> list[dict[str, Any]]:
        a, b = (pair.second, pair.first) if swapped else (pair.first, pair.second)
        variables = {
            "question": pair.question,
            "reference": pair.reference,
            "answer_a": a,
            "answer_b": b,
        }
        return self._templates.render(
            self.rubric, variables, [{"role": "user", "content": QUESTION}]
        )

    async def _all(self, asks: list[tuple[Pair, bool]]) -> list[str | None]:
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(
            timeout=self.timeout_s, headers=self.headers, transport=self._transport
        ) as client:

            async def one(pair: Pair, swapped: bool) -> str | None:
                async with gate:
                    return await self._verdict(client, self.messages(pair, swapped))

            return list(await asyncio.gather(*(one(p, s) for p, s in asks)))

    async def _verdict(
        self, client: httpx.AsyncClient, messages: list[dict[str, Any]]
    ) -> str | None:
        body = {
            "model": self.model,
            "messages": messages,
            **self.rubric.sampling,
            "logprobs": True,
            "top_logprobs": 10,
        }
        try:
            response = await client.post(f"{self.url}/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise EvaluationError(f"judge {self.url} did not answer: {exc!r}") from None
        if response.status_code != 200:
            raise EvaluationError(
                f"judge {self.url} answered {response.status_code}: {response.text[:300]}"
            )
        return verdict(response.json())


def verdict(body: dict[str, Any]) -> str | None:
    """ "A" or "B" from a chat completion: the likelier of the two among the first token's
    top log-probabilities, else the first such letter in the text; None when neither."""
    choice = body["choices"][0]
    content = (choice.get("logprobs") or {}).get("content") or []
    if content:
        best: dict[str, float] = {}
        for alt in content[0].get("top_logprobs") or []:
            letter = str(alt.get("token", "")).strip().upper()
            if letter in ("A", "B"):
                best[letter] = max(best.get(letter, -1e9), float(alt["logprob"]))
        if best:
            return max(best, key=lambda k: best[k])
    text = str((choice.get("message") or {}).get("content") or "")
    found = LETTER.search(text.upper())
    return found[1] if found else None
