"""The engine host's side of the object store: a vLLM endpoint plugin.

It takes over vLLM's `POST /v1/load_lora_adapter` (endpoint plugins may replace a route)
and keeps its contract: a local `lora_path` is passed through unchanged; an `s3://` one is
first copied into this host's cache and its content hash checked, then loaded from there. A
missing, altered or unreachable object answers the gateway with a clear error and loads
nothing. Registered under `vllm.endpoint_plugins` in pyproject.toml; `loraloop engine`
allowlists it in `VLLM_PLUGINS`, as vLLM requires for plugins that add routes.
"""

from __future__ import annotations

import asyncio
from argparse import Namespace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from serve.settings import StoreSettings
from serve.store.base import StoreError
from serve.store.configured import open_store

PLUGIN = "loraloop_adapter_store"

router = APIRouter()


class AdapterStorePlugin:
    name = PLUGIN
    required_tasks = None

    def attach_router(self, app: FastAPI) -> None:
        app.include_router(router)

    async def init_state(self, engine_client: Any, state: Any, args: Namespace) -> None:
        state.loraloop_store = open_store(StoreSettings())


def _error(status: int, message: str, code: str) -> JSONResponse:
    body = {"error": {"message": message, "type": code, "param": "lora_path", "code": status}}
    return JSONResponse(body, status_code=status)


@router.post("/v1/load_lora_adapter")
async def load_lora_adapter(raw_request: Request) -> Response:
    from vllm.entrypoints.openai.models.api_router import models
    from vllm.entrypoints.serve.lora.protocol import LoadLoRAAdapterRequest

    try:
        request = LoadLoRAAdapterRequest.model_validate(await raw_request.json())
    except ValueError as exc:
        return _error(HTTPStatus.BAD_REQUEST, f"invalid load request: {exc}", "InvalidUserInput")
    handler = models(raw_request)
    fresh = request.load_inplace or request.lora_name not in handler.lora_requests
    if request.lora_path and request.lora_path.startswith("s3://") and fresh:
        store = raw_request.app.state.loraloop_store
        if not store.remote:
            return _error(
                HTTPStatus.BAD_REQUEST,
                f"{request.lora_path} is in an object store, but this engine has none "
                "configured: set LORALOOP_STORE_URL (and its endpoint and credentials) here",
                "adapter_store_not_configured",
            )
        keep = frozenset(Path(r.lora_path) for r in handler.lora_requests.values())
        try:
            local = await asyncio.to_thread(store.local, request.lora_path, keep)
        except StoreError as exc:
            return _error(exc.status, str(exc), exc.code)
        request = request.model_copy(update={"lora_path": str(local)})
    response = await handler.load_lora_adapter(request)
    if isinstance(response, str):
        return Response(status_code=200, content=response)
    return JSONResponse(content=response.model_dump(), status_code=response.error.code)
