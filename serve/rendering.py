"""A request's prompt template applied to what goes to the engine.

The version asked for, else the one its release serves this sticky id, is rendered into the
payload's messages (and tools, and sampling defaults the request left unset); the capture
record keeps which version rendered what, so reviews and drift see the prompt the model saw.
"""

from typing import Any

from sqlalchemy import Engine

from serve.errors import APIError
from serve.protocol import ChatCompletionRequest, TemplateFields
from serve.templates import TemplateStore, VariableError


async def apply_template(
    templates: TemplateStore,
    db: Engine,
    req: TemplateFields,
    payload: dict[str, Any],
    record: dict[str, Any],
    sticky: str | None,
) -> str | None:
    """Render the template into the payload; return its default alias."""
    if not isinstance(req, ChatCompletionRequest):
        raise APIError(400, "templates apply to /v1/chat/completions", param="template")
    assert req.template is not None
    found = await templates.lookup(db, req.template, req.template_version, sticky)
    if found is None:
        version = f" version {req.template_version}" if req.template_version else ""
        raise APIError(
            404,
            f"template '{req.template}'{version} does not exist",
            "template_not_found",
            "template",
        )
    row, spec = found
    try:
        payload["messages"] = templates.render(spec, req.variables, req.messages)
    except VariableError as exc:
        raise APIError(
            422, f"template '{spec.name}': {exc}", "invalid_variables", "variables"
        ) from None
    try:
        tools = spec.request_tools(payload.get("tools"))
        if tools is not None and tools is not payload.get("tools"):
            payload["tools"] = record["rendered_tools"] = tools
    except VariableError as exc:
        raise APIError(422, str(exc), "invalid_tools", "tools") from None
    for key, value in spec.sampling.items():
        payload.setdefault(key, value)
    record.update(
        template=row.name,
        template_version=row.version,
        template_pinned=req.template_version is not None,
        rendered_messages=payload["messages"],
    )
    return spec.default_alias
