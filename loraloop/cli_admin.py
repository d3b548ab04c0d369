"""CLI commands for ops: adapter versions (through the gateway's admin API) and API keys."""

from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import typer
from rich.table import Table
from sqlmodel import Session

from loraloop.cli_support import CliError, console, friendly
from loraloop.db import create_db_engine
from loraloop.settings import get_settings
from serve.auth import ROLES, create_key, list_keys, revoke_key
from serve.paging import MAX_LIMIT

adapters_app = typer.Typer(
    help="Adapter versions: register, promote, canary, rollback, list.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys with roles (client, reviewer, admin).", no_args_is_help=True)


def call_gateway(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    settings = get_settings()
    url = settings.cli.gateway_url or f"http://{settings.serve.host}:{settings.serve.port}"
    headers = {"Content-Type": "application/json"}  # the API takes JSON only, bodyless too
    if settings.cli.api_key is not None:
        headers["Authorization"] = f"Bearer {settings.cli.api_key.get_secret_value()}"
    try:
        response = httpx.request(
            method, f"{url.rstrip('/')}{path}", json=body, headers=headers, timeout=300
        )
    except httpx.HTTPError as exc:
        raise CliError(
            f"the gateway at {url} does not answer ({exc}): start it with "
            "`loraloop run` or set LORALOOP_CLI_GATEWAY_URL"
        ) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise CliError(f"{response.status_code}: {message}")
    return response.json()


def _alias_line(alias: dict[str, Any]) -> str:
    line = f"{alias['name']}: production v{alias['production_version']}"
    if alias.get("canary_version"):
        line += f", canary v{alias['canary_version']} at {alias['canary_share']:.0%}"
    return line


@adapters_app.command("register")
@friendly
def register(
    name: Annotated[str, typer.Argument(help="Adapter lineage (also its alias).")],
    path: Annotated[str, typer.Argument(help="Directory inside the adapter store.")],
    base_model: Annotated[str | None, typer.Option(help="Base model it was trained on.")] = None,
) -> None:
    """Register a new version and load it on every engine."""
    out = call_gateway(
        "POST", "/admin/adapters", {"name": name, "path": path, "base_model": base_model}
    )
    console.print(f"registered {out['name']}@{out['version']} ({out['engine_name']})")


@adapters_app.command("promote")
@friendly
def promote(name: str, version: int) -> None:
    """Switch the alias to VERSION once every engine has it loaded."""
    console.print(
        _alias_line(call_gateway("POST", f"/admin/aliases/{name}/promote", {"version": version}))
    )


@adapters_app.command("canary")
@friendly
def canary(
    name: str,
    version: Annotated[int, typer.Argument()],
    share: Annotated[float, typer.Option(help="Share of the alias's traffic, 0..1.")] = 0.1,
) -> None:
    """Send a share of the alias's traffic to VERSION (share 0 ends the canary)."""
    body = {"version": version if share > 0 else None, "share": share}
    console.print(_alias_line(call_gateway("POST", f"/admin/aliases/{name}/canary", body)))


@adapters_app.command("rollback")
@friendly
def rollback(name: str) -> None:
    """Switch the alias back to its previous production version."""
    console.print(_alias_line(call_gateway("POST", f"/admin/aliases/{name}/rollback")))


@adapters_app.command("list")
@friendly
def list_versions(
    name: Annotated[str | None, typer.Option(help="Only aliases whose name has this.")] = None,
) -> None:
    """Every version with its status (all pages of the admin list)."""
    table = Table("version", "status", "rank", "created", "path")
    versions: list[dict[str, Any]] = []
    while True:
        asked = {"offset": len(versions), **({"name": name} if name else {})}
        chunk = call_gateway("GET", f"/admin/adapters?{urlencode(asked)}")
        versions += chunk
        if len(chunk) < MAX_LIMIT:
            break
    for v in versions:
        table.add_row(
            f"{v['name']}@{v['version']}",
            v["status"],
            str(v["rank"]),
            str(v["created_at"])[:19],
            v["path"],
        )
    console.print(table)


@keys_app.command("create")
@friendly
def keys_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str | None, typer.Option(help="Who or what uses it.")] = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    if role not in ROLES:
        raise CliError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    engine = create_db_engine(get_settings().db.url.get_secret_value())
    with Session(engine) as session:
        key = create_key(session, role, name)
    engine.dispose()
    console.print(key, soft_wrap=True)


@keys_app.command("list")
@friendly
def keys_list() -> None:
    engine = create_db_engine(get_settings().db.url.get_secret_value())
    table = Table("id", "role", "name", "created", "revoked")
    with Session(engine) as session:
        for key in list_keys(session):
            table.add_row(
                key.id,
                key.role,
                key.name or "",
                str(key.created_at)[:19],
                "yes" if key.revoked else "",
            )
    engine.dispose()
    console.print(table)


@keys_app.command("revoke")
@friendly
def keys_revoke(key_id: str) -> None:
    engine = create_db_engine(get_settings().db.url.get_secret_value())
    with Session(engine) as session:
        key = revoke_key(session, key_id)
    engine.dispose()
    if key is None:
        raise CliError(f"no key with id {key_id}")
    console.print(f"revoked {key_id}")
