"""The prompting arms: would the base model with a few of the training examples in its
prompt do as well as an adapter trained on all of them?

Two arms, both in-context learning from the very data the adapter was trained on, so the
comparison is fair: *fixed* puts the same `k` examples before every prompt (chosen to cover
the data: the most typical one first, then each next one the least like those already
chosen, by the sentence embeddings drift reports use); *retrieved* puts the `k` training
examples most like each prompt (cosine similarity of the same embeddings). Shots are whole
user/assistant turns inserted after the prompt's system messages, as a template's own
examples are. Answers that are tool calls make no shots (their text form is not what the
model should write). A prompt's shots stop before they overflow the token budget: the
smaller of `fewshot_max_tokens` and what the engine's context leaves after the prompt and
the answer; a shot that does not fit is dropped and counted, never sent to fail.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from retrain.dataset import Example

log = logging.getLogger(__name__)
TURN_OVERHEAD = 8  # tokens a chat template adds around each turn, about
Encode = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised embeddings
Count = Callable[[str], int]  # text -> tokens


@dataclass(frozen=True)
class Shot:
    user: str
    assistant: str
    tokens: int


def user_text(example: Example) -> str:
    users = [str(m.get("content") or "") for m in example.prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def shots_from(train: Sequence[Example], count: Count) -> list[Shot]:
    """One shot per training example with a user turn and a text answer."""
    shots = []
    for ex in train:
        last = ex.messages[-1]
        question, answer = user_text(ex), str(last.get("content") or "")
        if question and answer and not last.get("tool_calls"):
            tokens = count(question) + count(answer) + 2 * TURN_OVERHEAD
            shots.append(Shot(question, answer, tokens))
    return shots


def prompt_tokens(example: Example, count: Count) -> int:
    return sum(count(str(m.get("content") or "")) + TURN_OVERHEAD for m in example.prompt)


def with_shots(example: Example, shots: Sequence[Shot]) -> Example:
    """The example with the shots' turns after its leading system messages."""
    prompt = example.prompt
    head = 0
    while head < len(prompt) and prompt[head].get("role") == "system":
        head += 1
    turns = [
        turn
        for shot in shots
        for turn in (
            {"role": "user", "content": shot.user},
            {"role": "assistant", "content": shot.assistant},
        )
    ]
    messages = (*prompt[:head], *turns, *prompt[head:], example.messages[-1])
    return replace(example, messages=tuple(messages))


class ShotPicker:
    """Chooses each arm's shots for a prompt within a token budget."""

    def __init__(
        self,
        shots: list[Shot],
        encode: Encode,
        k: int,
        budget: int,
        context: int | None,
        answer_tokens: int,
        count: Count,
    ) -> None:
        if k < 1:
            raise ValueError("the prompting arms need k >= 1 examples")
        self.shots, self.k, self.budget, self.count = shots, k, budget, count
        self.context, self.answer_tokens = context, answer_tokens
        self.trimmed = 0  # shots left out because they did not fit
        self.vectors = encode([s.user for s in shots]) if shots else np.zeros((0, 1))
        self.encode = encode
        self.fixed_order = self._cover()

    def _cover(self) -> list[int]:
        """The most typical shot, then each next the least like those chosen (k of them)."""
        if not self.shots:
            return []
        centre = self.vectors.mean(axis=0)
        chosen = [int(np.argmax(self.vectors @ centre))]
        closest = self.vectors @ self.vectors[chosen[0]]
        while len(chosen) < min(self.k, len(self.shots)):
            closest[chosen] = np.inf
            nxt = int(np.argmin(closest))
            chosen.append(nxt)
            closest = np.maximum(closest, self.vectors @ self.vectors[nxt])
        return chosen

    def _fit(self, order: Sequence[int], example: Example) -> list[Shot]:
        room = self.budget
        if self.context:
            spare = self.context - prompt_tokens(example, self.count) - self.answer_tokens - 32
            room = min(room, spare)
        picked = []
        for i in order:
            shot = self.shots[i]
            if shot.tokens > room:
                self.trimmed += 1
                continue
            picked.append(shot)
            room -= shot.tokens
        return picked

    def template_shots(self) -> list[Shot]:
        """The fixed arm's shots as a template would carry them: in order, within the
        token budget (a template's examples go in every request's prompt)."""
        room, picked = self.budget, []
        for i in self.fixed_order:
            if self.shots[i].tokens <= room:
                picked.append(self.shots[i])
                room -= self.shots[i].tokens
        return picked

    def fixed(self, examples: Sequence[Example]) -> list[Example]:
        return [with_shots(ex, self._fit(self.fixed_order, ex)) for ex in examples]

    def retrieved(self, examples: Sequence[Example]) -> list[Example]:
        if not self.shots:
            return list(examples)
        queries = self.encode([user_text(ex) for ex in examples])
        out = []
        for ex, query in zip(examples, queries, strict=True):
            nearest = np.argsort(-(self.vectors @ query), kind="stable")[: self.k]
            out.append(with_shots(ex, self._fit([int(i) for i in nearest], ex)))
        return out
