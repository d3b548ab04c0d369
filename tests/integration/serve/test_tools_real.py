"""Tool calling through the gateway and the real engine, as agent backends use it: the
openai SDK (auto, required, named, none, streamed) and LangChain's `bind_tools`; every
call captured whole, and bad tool input a clear 400 that is captured too."""

import json
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.integration.conftest import Platform
from tests.utils.platform import stored

pytestmark = pytest.mark.integration

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order's status by its id",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
    },
}
REFUND = {
    "type": "function",
    "function": {
        "name": "refund",
        "description": "Refund an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["order_id", "amount"],
            "additionalProperties": False,
        },
    },
}
TOOLS = [LOOKUP, REFUND]
ASK = [{"role": "user", "content": "Where is my order A-1042?"}]
NAMED = {"type": "function", "function": {"name": "lookup_order"}}


@pytest.fixture(scope="module")
def sdk(platform: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key="unused-on-loopback")


def valid(name: str, arguments: str) -> bool:
    """Arguments parse and match the declared schema: required keys, types, nothing else."""
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}[name]
    args = json.loads(arguments)
    types = {"string": str, "number": (int, float)}
    return set(args) == set(schema["required"]) and all(
        isinstance(args[k], types[schema["properties"][k]["type"]]) for k in args
    )


def dumped(calls: Any) -> list[dict[str, Any]]:
    return [c.model_dump(exclude_none=True) for c in calls]


def test_named_and_required_tool_choice_return_schema_valid_calls_captured_whole(
    sdk: openai.OpenAI, platform: Platform
) -> None:
    named = sdk.chat.completions.create(
        model=platform.model,
        messages=ASK,
        tools=TOOLS,
        tool_choice=NAMED,
        max_tokens=60,
        temperature=0,
    )
    calls = named.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["lookup_order"]
    assert valid("lookup_order", calls[0].function.arguments)
    record = stored(platform, named.model_extra["interaction_id"])  # type: ignore[index]
    assert record.tool_calls == dumped(calls)
    assert record.request["tools"] == TOOLS

    required = sdk.chat.completions.create(
        model=platform.model,
        messages=ASK,
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0,
    )
    choice = required.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls or []) == 1
    call = (choice.message.tool_calls or [])[0]
    assert valid(call.function.name, call.function.arguments)

    none = sdk.chat.completions.create(
        model=platform.model, messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=12
    )
    assert not none.choices[0].message.tool_calls and none.choices[0].message.content


def test_streamed_tool_call_deltas_pass_through_and_are_captured_as_one_call(
    sdk: openai.OpenAI, platform: Platform
) -> None:
    stream = sdk.chat.completions.create(
        model=platform.model,
        messages=ASK,
        tools=TOOLS,
        tool_choice=NAMED,
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert len(deltas) >= 2, "the arguments arrive in pieces"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert deltas[0].function and deltas[0].function.name == "lookup_order"
    assert valid("lookup_order", arguments)
    record = stored(platform, chunks[0].model_extra["interaction_id"])  # type: ignore[index]
    assert record.tool_calls is not None and len(record.tool_calls) == 1
    assert record.tool_calls[0]["id"] == deltas[0].id
    assert record.tool_calls[0]["function"] == {"name": "lookup_order", "arguments": arguments}
    assert record.ttft_ms is not None


def test_a_conversation_with_tool_results_is_answered_and_kept(
    sdk: openai.OpenAI, platform: Platform
) -> None:
    """auto: the bundled 135M model mostly answers in text; the turn after a tool result
    must be served, and the capture keeps the tool messages the model saw."""
    conversation = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "A-1042"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
    ]
    answer = sdk.chat.completions.create(
        model=platform.model, messages=conversation, tools=TOOLS, max_tokens=30, temperature=0
    )
    choice = answer.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert choice.message.content or choice.message.tool_calls
    record = stored(platform, answer.model_extra["interaction_id"])  # type: ignore[index]
    assert [m["role"] for m in record.request["messages"]] == ["user", "assistant", "tool"]


def test_langchain_bind_tools_gets_a_tool_call(platform: Platform) -> None:
    llm = ChatOpenAI(
        base_url=f"{platform.gateway_url}/v1",
        api_key="unused-on-loopback",  # type: ignore[arg-type]
        model=platform.model,
        temperature=0,
        max_tokens=60,  # type: ignore[call-arg]
    )
    message = llm.bind_tools(TOOLS, tool_choice="lookup_order").invoke(ASK[0]["content"])
    assert [c["name"] for c in message.tool_calls] == ["lookup_order"]  # type: ignore[attr-defined]
    assert set(message.tool_calls[0]["args"]) == {"order_id"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": ASK, "tools": [{"type": "function"}]},
        {"messages": ASK, "tools": TOOLS, "tool_choice": {"type": "function"}},
        {"messages": ASK, "tools": TOOLS, "tool_choice": "sometimes"},
        {"messages": [*ASK, {"role": "tool", "content": 5}]},
    ],
    ids=["tool-without-function", "named-without-name", "unknown-choice", "bad-tool-message"],
)
def test_invalid_tool_input_is_a_clear_400_and_captured(
    platform: Platform, body: dict[str, Any]
) -> None:
    response = httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        json={"model": platform.model, **body},
        timeout=60,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    record = stored(platform, response.headers["x-interaction-id"])
    assert record.status_code == 400 and record.error
