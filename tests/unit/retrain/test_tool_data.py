"""Agent conversations as training data: seed rows with tools and tool calls, their
canonical answer text, the exact-call score the gate uses, curation that drops invalid
calls, and the tokens the trainer learns (the call, rendered with the tools)."""

import json
from pathlib import Path
from typing import Any

import pytest

from feedback.tool_calls import answer_text, calls_in
from retrain.curate import curate
from retrain.dataset import DatasetError, Example, read_seed
from retrain.metrics import score
from retrain.settings import RetrainSettings
from retrain.train import IGNORE, encode
from serve.chat_template import load_tokenizer
from serve.settings import ModelSettings
from tests.utils.tools import LOOKUP


def call(arguments: Any, name: str = "lookup_order") -> dict[str, Any]:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}


def agent(i: int, arguments: Any = None, question: str | None = None) -> Example:
    args = {"order_id": f"A-{i}"} if arguments is None else arguments
    return Example(
        f"t:{i}",
        (
            {
                "role": "user",
                "content": question or f"Where is my order A-{i}, placed {i} days ago?",
            },
            {"role": "assistant", "content": "", "tool_calls": [call(args)]},
        ),
        "seed",
        "order-agent",
        (),
        (LOOKUP,),
    )


def test_seed_rows_carry_tools_tool_calls_and_tool_results(tmp_path: Path) -> None:
    row = {
        "tools": [LOOKUP],
        "messages": [
            {"role": "user", "content": "Where is A-1?"},
            {"role": "assistant", "content": None, "tool_calls": [call({"order_id": "A-1"})]},
            {"role": "tool", "tool_call_id": "c", "content": '{"status": "shipped"}'},
            {"role": "assistant", "content": "It has shipped."},
        ],
    }
    path = tmp_path / "agent.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (example,) = read_seed(path)
    assert example.tools == (LOOKUP,)
    assert example.messages[1]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert example.messages[2] == {
        "role": "tool",
        "content": '{"status": "shipped"}',
        "tool_call_id": "c",
    }
    assert example.answer == "It has shipped."


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "x y"}}]},
            r"tools\[0\]\.function\.name: String should match",
        ),
        ({"tools": {"lookup_order": {}}}, "'tools' must be a list"),
        (
            {"messages": [{"role": "user", "content": "q", "tool_calls": [call({})]}]},
            "only an assistant turn",
        ),
    ],
)
def test_bad_tool_rows_name_the_line(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    row = {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    } | change
    if "messages" in change:
        row["messages"] = [*change["messages"], {"role": "assistant", "content": "a"}]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n" + json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match=rf"bad\.jsonl:2: .*{problem}"):
        read_seed(path)


def test_the_canonical_answer_ignores_key_order_and_spacing() -> None:
    a = answer_text("", [call('{"order_id": "A-1", "note": "x"}')])
    b = answer_text(None, [call('{ "note":"x","order_id":"A-1" }')])
    assert a == b and calls_in(a) == [("lookup_order", {"note": "x", "order_id": "A-1"})]
    assert answer_text("plain", None) == "plain" and calls_in("plain") == []


def test_a_tool_call_reference_is_scored_by_the_exact_call() -> None:
    reference = agent(1).answer
    exact = answer_text("Let me look.", [call('{"order_id":"A-1"}')])
    wrong_argument = answer_text("", [call({"order_id": "A-2"})])
    wrong_function = answer_text("", [call({"order_id": "A-1"}, name="refund")])
    text = "Your order A-1 has shipped."
    for name in ("rouge_l", "token_f1", "exact_match", "tool_calls"):
        got = [score([p], [reference], [name])[name] for p in (exact, wrong_argument)]
        assert got == [1.0, 0.0], name
        assert score([wrong_function, text], [reference] * 2, [name])[name] == 0.0
    assert score([text], ["Your order has shipped."], ["rouge_l"])["rouge_l"] > 0.5, "text: Rouge"


def test_curation_drops_invalid_calls_and_says_which() -> None:
    examples = [agent(i) for i in range(1, 40)]
    examples += [agent(90, {"order_id": "90"}), agent(91, "{broken"), agent(92, {"id": "A-9"})]
    settings = RetrainSettings(min_examples=4, min_chars=1)
    report = curate(examples, settings).report
    assert report["dropped_invalid_tool_calls"] == 3
    assert report["invalid_tool_calls"][0].startswith("t:90: lookup_order: order_id: '90'")
    assert "t:91: lookup_order: the arguments are not JSON" in report["invalid_tool_calls"][1]


def test_the_trainer_learns_the_call_rendered_with_the_tools() -> None:
    tokenizer = load_tokenizer(ModelSettings().model_dir())
    encoded = encode(agent(7), tokenizer, 1024)
    assert encoded is not None
    ids, labels = encoded
    prompt = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab == IGNORE])
    learned = tokenizer.decode([t for t in labels if t != IGNORE])
    assert '<tools>\n{"type": "function", "function": {"name": "lookup_order"' in prompt
    assert learned == (
        '<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "A-7"}}\n'
        "</tool_call><|im_end|>\n"
    )
