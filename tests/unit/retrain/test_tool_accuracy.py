"""Tool-call accuracy, the demo's and the bench's numbers: exact calls, the right function
with wrong arguments, schema-valid calls, text answered where no call was wanted."""

from typing import Any

import pytest

from feedback.tool_calls import answer_text
from retrain.dataset import Example
from retrain.tool_accuracy import tool_accuracy
from tests.utils.tools import LOOKUP


def made(name: str, arguments: Any) -> str:
    call = {"function": {"name": name, "arguments": arguments}}
    return answer_text(None, [call])


def reference(answer: str, i: int) -> Example:
    last: dict[str, Any] = {"role": "assistant", "content": answer}
    return Example(f"r:{i}", ({"role": "user", "content": f"q{i}"}, last), "seed", tools=(LOOKUP,))


def test_exact_right_function_valid_and_text() -> None:
    want = made("lookup_order", {"order_id": "A-1"})
    references = [reference(want, 0), reference(want, 1), reference(want, 2)]
    references.append(reference("Returns are free within 30 days.", 3))
    answers = [
        made("lookup_order", '{"order_id":  "A-1"}'),  # the same call, spaced differently
        made("lookup_order", {"order_id": "B-1"}),  # right function, invalid argument
        "I cannot look that up.",  # no call at all
        "Returns are free within 30 days.",
    ]
    got = tool_accuracy(answers, references)
    assert got.calls_wanted == 3
    assert got.exact_calls == pytest.approx(1 / 3)
    assert got.right_function == pytest.approx(2 / 3)
    assert (got.answers_with_calls, got.calls_made, got.valid_calls) == (2, 2, 1)
    assert got.text_rouge_l == pytest.approx(1.0)


def test_no_call_wanted_is_no_division_by_zero() -> None:
    got = tool_accuracy(["hello"], [reference("hello", 0)])
    assert (got.calls_wanted, got.exact_calls, got.text_rouge_l) == (0, 0.0, 1.0)
