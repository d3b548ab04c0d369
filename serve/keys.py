"""Admin API for API keys: create, list, revoke.

A key revoked here is dropped from this gateway's cache at once; other gateways stop
accepting it when their cached check expires (the reconcile interval).
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session

from serve.auth import Authenticator, create_key, list_keys, require, revoke_key
from serve.deps import get_session
from serve.errors import APIError
from serve.protocol import KeyCreated, KeyCreateRequest, KeyOut
from serve.tables import ApiKey

router = APIRouter(prefix="/admin/keys", dependencies=[Depends(require("admin"))])
DB = Annotated[Session, Depends(get_session)]


def get_auth(request: Request) -> Authenticator:
    return request.app.state.auth  # type: ignore[no-any-return]


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id, role=key.role, name=key.name, created_at=key.created_at, revoked=key.revoked
    )


@router.get("", response_model=list[KeyOut])
def keys(session: DB) -> list[KeyOut]:
    return [_out(k) for k in list_keys(session)]


@router.post("", response_model=KeyCreated, status_code=201)
def create(body: KeyCreateRequest, session: DB) -> KeyCreated:
    plain = create_key(session, body.role, body.name)
    row = session.get(ApiKey, plain.split("-", 2)[1])
    assert row is not None
    return KeyCreated(**_out(row).model_dump(), key=plain)


@router.delete("/{key_id}", response_model=KeyOut)
async def revoke(
    key_id: str, session: DB, auth: Annotated[Authenticator, Depends(get_auth)]
) -> KeyOut:
    """Async so that the cache is changed on the event loop, which reads it."""
    key = await asyncio.to_thread(revoke_key, session, key_id)
    if key is None:
        raise APIError(404, f"no key with id {key_id}", "key_not_found", "key_id")
    auth.forget(key_id)
    return _out(key)
