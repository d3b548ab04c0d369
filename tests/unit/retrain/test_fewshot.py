"""The prompting arms' shots: chosen by the real sentence-embedding model, inserted after
the system turns, kept within the token budget (trimmed, counted, never overflowing)."""

from collections.abc import Sequence

import numpy as np
import pytest

from feedback.drift.embeddings import Embedder
from retrain.dataset import Example
from retrain.fewshot import ShotPicker, shots_from, with_shots


def chat(i: int, question: str, answer: str, system: str | None = None) -> Example:
    head = [{"role": "system", "content": system}] if system else []
    turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return Example(f"e{i}", tuple(head + turns), "seed")


def words(text: str) -> int:
    return len(text.split())


TRAIN = [
    chat(0, "How much does the Aurora desk lamp cost?", "The Aurora lamp costs $49."),
    chat(1, "What is the price of the Nimbus kettle?", "The Nimbus kettle costs $35."),
    chat(2, "How do I return my order?", "Start a return from your orders page."),
    chat(3, "Can I send back a parcel I do not want?", "Yes: start a return within 30 days."),
    chat(4, "Where is my package?", "Track it from the link in your shipping email."),
    chat(5, "My delivery has not arrived yet", "Track it from the link in your shipping email."),
]


@pytest.fixture(scope="module")
def encode() -> Embedder:
    return Embedder()


def picker(
    encode: Embedder, k: int, budget: int = 10_000, context: int | None = None
) -> ShotPicker:
    return ShotPicker(shots_from(TRAIN, words), encode.encode, k, budget, context, 10, words)


def test_retrieved_shots_are_the_training_examples_most_like_the_prompt(encode: Embedder) -> None:
    question = chat(9, "How much is the Aurora lamp?", "")
    [prompted] = picker(encode, 2).retrieved([question])
    users = [m["content"] for m in prompted.prompt if m["role"] == "user"]
    assert users[-1] == "How much is the Aurora lamp?"
    assert users[0] == "How much does the Aurora desk lamp cost?", users
    assert "price" in users[1], users  # the other price question, not a return or a parcel


def test_fixed_shots_cover_the_data_and_are_the_same_for_every_prompt(encode: Embedder) -> None:
    p = picker(encode, 3)
    a, b = p.fixed([chat(8, "Hello?", ""), chat(9, "Where is it?", "")])
    shots_a = [m["content"] for m in a.prompt[:-1]]
    assert shots_a == [m["content"] for m in b.prompt[:-1]]
    chosen = {m["content"] for m in a.prompt[:-1] if m["role"] == "user"}
    assert len(chosen) == 3
    # three kinds of question (price, return, parcel): a covering choice takes one of each
    text = " ".join(chosen).lower()
    for kind in (("cost", "price"), ("return", "send back"), ("package", "delivery")):
        assert any(word in text for word in kind), (kind, chosen)


def test_shots_go_after_the_system_turns(encode: Embedder) -> None:
    question = chat(9, "Where is my parcel?", "", system="You are Lumen's support desk.")
    [prompted] = picker(encode, 1).retrieved([question])
    roles = [m["role"] for m in prompted.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert prompted.messages[0]["content"] == "You are Lumen's support desk."
    assert prompted.answer == question.answer


def test_shots_stop_at_the_budget_and_the_trimmed_are_counted(encode: Embedder) -> None:
    p = picker(encode, 4, budget=40)
    [prompted] = p.fixed([chat(9, "Where is it?", "")])
    added = len(prompted.prompt) - 1
    shots = shots_from(TRAIN, words)
    assert 0 < added // 2 < 4 and p.trimmed == 4 - added // 2
    assert sum(s.tokens for s in shots if s.user in str(prompted.prompt)) <= 40


def test_the_engine_context_bounds_the_shots_too(encode: Embedder) -> None:
    # a context that leaves no room after the prompt and the answer: no shots, no overflow
    p = picker(encode, 3, context=50)
    [prompted] = p.retrieved([chat(9, "Where is it?", "")])
    assert len(prompted.prompt) == 1 and p.trimmed == 3


def test_tool_call_answers_and_empty_ones_make_no_shots() -> None:
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]}
    examples = [
        Example("t", ({"role": "user", "content": "Order 7?"}, call), "feedback"),
        chat(1, "Hi", ""),
        chat(2, "Hi", "Hello!"),
    ]
    assert [s.user for s in shots_from(examples, words)] == ["Hi"]


def test_k_must_be_positive() -> None:
    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 2))

    with pytest.raises(ValueError, match="k >= 1"):
        ShotPicker([], encode, 0, 100, None, 10, words)


def test_with_no_shots_the_prompt_is_unchanged() -> None:
    ex = chat(1, "Hi", "Hello!")
    assert with_shots(ex, []) == ex


def test_k_larger_than_the_training_set_takes_every_example_once(encode: Embedder) -> None:
    p = picker(encode, 50)
    for prompted in (*p.fixed([chat(8, "Hello?", "")]), *p.retrieved([chat(9, "Where?", "")])):
        users = [m["content"] for m in prompted.prompt[:-1] if m["role"] == "user"]
        assert sorted(users) == sorted(e.messages[0]["content"] for e in TRAIN)
    assert p.trimmed == 0
