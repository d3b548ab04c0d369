"""Which chat template the engine (and training) renders conversations with.

Tool calling needs a template that can show the model its tools, render an assistant's
`tool_calls` and a `tool` message's result, in the format the engine's tool parser reads
back. Many small models ship ChatML templates with no tool support (the bundled SmolLM2
among them), so `auto` fills that gap with `chatml_tools.jinja`: identical to such a model's
own template when a conversation has no tools, Hermes-format tool calls when it does. A
model whose own template knows tools, or is not ChatML, keeps its own: serving and training
must render a conversation the same way, so both resolve the template here.
"""

import json
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).resolve().parent / "chat_templates"
CHATML_TOOLS = SHIPPED / "chatml_tools.jinja"


class ChatTemplateError(ValueError):
    """The configured chat template cannot be used; the message says why."""


def model_template(model_dir: Path) -> str | None:
    """The model's own chat template: `chat_template.jinja`, else tokenizer_config.json's."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text()).get("chat_template")
        if isinstance(template, str):
            return template
        if isinstance(template, list):  # named templates: the default one
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            return named.get("default")
    return None


def knows_tools(template: str) -> bool:
    return "tools" in template


def resolve_chat_template(setting: str, model_dir: Path) -> Path | None:
    """The template file to render with, or None for the model's own.

    `auto`: the shipped ChatML-with-tools template when the model's own is ChatML without
    tools, else the model's own; `model`: always the model's own; anything else: a path,
    absolute or relative to the working directory, or the name of a shipped template.
    """
    if setting == "model":
        return None
    if setting == "auto":
        own = model_template(model_dir)
        if own is not None and "<|im_start|>" in own and not knows_tools(own):
            return CHATML_TOOLS
        return None
    path = Path(setting)
    for candidate in (path, SHIPPED / path, SHIPPED / f"{setting}.jinja"):
        if candidate.is_file():
            return candidate.resolve()
    shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.jinja")))
    raise ChatTemplateError(
        f"chat template {setting!r} is neither a file nor a shipped template ({shipped}); "
        "set LORALOOP_ENGINE_CHAT_TEMPLATE to auto, model, a shipped name or a path"
    )


def read_chat_template(setting: str, model_dir: Path) -> str | None:
    """The resolved template's text, or None for the model's own (for the tokenizer)."""
    path = resolve_chat_template(setting, model_dir)
    return path.read_text() if path is not None else None


def load_tokenizer(model_dir: Path, setting: str = "auto") -> Any:
    """The model's tokenizer with the chat template the engine serves it with, so that a
    conversation is trained on exactly as it will be rendered when served."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if (template := read_chat_template(setting, model_dir)) is not None:
        tokenizer.chat_template = template
    return tokenizer
