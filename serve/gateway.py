"""The OpenAI-compatible inference API: completions, models, templates, metrics."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlmodel import Session

from feedback.tool_calls import tool_names
from serve.adapters import AdapterRouter
from serve.auth import Principal, local_or, require
from serve.deps import get_proxy, get_router, get_session
from serve.errors import APIError
from serve.paging import MAX_LIMIT
from serve.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    TemplateCard,
    TemplateList,
)
from serve.proxy import Proxy

router = APIRouter()
Client = Annotated[Principal, Depends(require("client"))]
Inference = Annotated[Proxy, Depends(get_proxy)]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body in the OpenAPI schema: the proxy reads it itself (to capture even
    a body that does not parse), so FastAPI does not declare it."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.post("/v1/chat/completions", openapi_extra=_body(ChatCompletionRequest))
async def chat_completions(request: Request, _: Client, proxy: Inference) -> Response:
    """OpenAI's chat completions, streamed or not; `template` and `variables` are loraloop's."""
    return await proxy.handle(request, "chat")


@router.post("/v1/completions", openapi_extra=_body(CompletionRequest))
async def completions(request: Request, _: Client, proxy: Inference) -> Response:
    return await proxy.handle(request, "completions")


@router.get("/v1/models", response_model=ModelList)
async def models(
    _: Client,
    adapters: Annotated[AdapterRouter, Depends(get_router)],
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    after: Annotated[str | None, Query(max_length=300)] = None,
) -> ModelList:
    """The base model, every alias with a production version, and every version. All of
    them unless `limit` is given (OpenAI's SDK lists models without paging); then
    `has_more` says whether to ask again `after` the last id."""
    await adapters.reconcile()
    cards = [ModelCard(id=adapters.base_model, kind="base")]
    for alias in sorted(adapters.aliases.values(), key=lambda a: a.name):
        if alias.production_version is not None:
            cards.append(
                ModelCard(
                    id=alias.name,
                    kind="alias",
                    production_version=alias.production_version,
                    canary_version=alias.canary_version,
                    canary_share=alias.canary_share,
                )
            )
    for version in sorted(adapters.versions.values(), key=lambda v: (v.name, v.version)):
        cards.append(ModelCard(id=version.ref, kind="version"))
    start = 0
    if after is not None:
        ids = [card.id for card in cards]
        if after not in ids:
            raise APIError(400, f"`after`: no model '{after}' to list after", param="after")
        start = ids.index(after) + 1
    end = len(cards) if limit is None else start + limit
    return ModelList(data=cards[start:end], has_more=end < len(cards))


@router.get("/v1/templates", response_model=TemplateList)
def templates(
    request: Request, _: Client, session: Annotated[Session, Depends(get_session)]
) -> TemplateList:
    rows = request.app.state.templates.list(session)
    latest = {row.name: row.version for row in rows}
    return TemplateList(
        data=[
            TemplateCard(
                name=row.name,
                version=row.version,
                latest=latest[row.name] == row.version,
                description=row.spec.get("description", ""),
                variables=row.spec.get("variables", {}),
                default_alias=row.spec.get("default_alias"),
                tools=tool_names(row.spec.get("tools")),
            )
            for row in rows
        ]
    )


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(local_or("reviewer"))])
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
