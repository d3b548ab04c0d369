"""The shipped ChatML-with-tools template: the bundled model's own rendering when a
conversation has no tools, Hermes tool calls that vLLM's `hermes` parser reads when it has.

Rendered through transformers' `apply_chat_template`, as vLLM and training render it."""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer
from vllm.tool_parsers.hermes_tool_parser import Hermes2ProToolParser

from serve.chat_template import CHATML_TOOLS, read_chat_template
from serve.settings import ModelSettings

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "An order's status by its id",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]
CALL = {"id": "c1", "type": "function", "function": {"name": "lookup_order"}}


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return AutoTokenizer.from_pretrained(ModelSettings().model_dir())


CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ],
    [{"role": "system", "content": ""}, {"role": "user", "content": "a"}],
]


@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("generation_prompt", [True, False])
def test_without_tools_it_renders_as_the_models_own(
    tokenizer: object, conversation: list[dict[str, str]], generation_prompt: bool
) -> None:
    render = tokenizer.apply_chat_template  # type: ignore[attr-defined]
    shipped = CHATML_TOOLS.read_text()
    own = render(conversation, tokenize=False, add_generation_prompt=generation_prompt)
    assert (
        render(
            conversation,
            chat_template=shipped,
            tokenize=False,
            add_generation_prompt=generation_prompt,
        )
        == own
    )


@pytest.mark.parametrize("arguments", ['{"order_id": "A-1"}', {"order_id": "A-1"}])
def test_tools_calls_and_results_render_in_the_parsers_format(
    tokenizer: object, arguments: object
) -> None:
    """An assistant turn's calls (arguments a JSON string, as OpenAI sends them, or an
    object) render as <tool_call> blocks the hermes parser extracts back exactly."""
    call = {**CALL, "function": {**CALL["function"], "arguments": arguments}}
    conversation = [
        {"role": "user", "content": "Where is A-1?"},
        {"role": "assistant", "content": None, "tool_calls": [call, call]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
        {"role": "tool", "tool_call_id": "c1", "content": "second"},
    ]
    text = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        conversation, tools=TOOLS, chat_template=CHATML_TOOLS.read_text(), tokenize=False
    )
    assert '<tools>\n{"type": "function", "function": {"name": "lookup_order"' in text
    assistant = text.split("<|im_start|>assistant")[1].split("<|im_end|>")[0]
    parsed = Hermes2ProToolParser(tokenizer).extract_tool_calls(assistant, request=None)  # type: ignore[arg-type]
    assert parsed.tools_called
    assert [(c.function.name, json.loads(c.function.arguments)) for c in parsed.tool_calls] == [
        ("lookup_order", {"order_id": "A-1"})
    ] * 2
    results = text.split("<|im_start|>user")[-1]
    assert results.count("<tool_response>") == 2
    assert results.endswith("</tool_response><|im_end|>\n")


def test_auto_picks_the_shipped_template_only_for_chatml_without_tools(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text("<|im_start|>{{ messages }}")
    assert read_chat_template("auto", tmp_path) == CHATML_TOOLS.read_text()
    (tmp_path / "chat_template.jinja").write_text("[INST]{{ messages }}[/INST]")
    assert read_chat_template("auto", tmp_path) is None, "not ChatML: the model's own"
    (tmp_path / "chat_template.jinja").unlink()
    config = {"chat_template": [{"name": "default", "template": "<|im_start|>{{ tools }}"}]}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert read_chat_template("auto", tmp_path) is None, "knows tools: the model's own"
    assert read_chat_template("chatml_tools", tmp_path) == CHATML_TOOLS.read_text()
    assert read_chat_template("model", tmp_path) is None
