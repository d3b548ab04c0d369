"""`loraloop keys` and `loraloop adapters` against a live gateway (on the fake engine)."""

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from loraloop.cli import app
from loraloop.launch import free_port
from loraloop.settings import Settings
from tests.utils.adapters import make_adapter_dir

runner = CliRunner()


@pytest.fixture
def live(migrated_db: str, make_live_gateway: Callable[..., Settings]) -> Settings:
    return make_live_gateway(migrated_db, require_keys=True)


def test_keys_and_adapter_lifecycle_through_the_cli(live: Settings) -> None:
    env = {
        "LORALOOP_DB_URL": live.db.url.get_secret_value(),
        "LORALOOP_CLI_GATEWAY_URL": f"http://127.0.0.1:{live.serve.port}",
    }
    created = runner.invoke(app, ["keys", "create", "--role", "admin", "--name", "ops"], env=env)
    assert created.exit_code == 0, created.output
    env["LORALOOP_CLI_API_KEY"] = created.output.strip()

    store = live.serve.adapter_store
    for name in ("v1", "v2"):
        make_adapter_dir(store, name)
        result = runner.invoke(app, ["adapters", "register", "support", name], env=env)
        assert result.exit_code == 0, result.output
    assert "registered support@2" in result.output

    promoted = runner.invoke(app, ["adapters", "promote", "support", "1"], env=env)
    assert promoted.output.strip() == "support: production v1"
    canary = runner.invoke(app, ["adapters", "canary", "support", "2", "--share", "0.25"], env=env)
    assert "canary v2 at 25%" in canary.output
    runner.invoke(app, ["adapters", "promote", "support", "2"], env=env)
    rolled = runner.invoke(app, ["adapters", "rollback", "support"], env=env)
    assert rolled.output.strip() == "support: production v1"
    listed = runner.invoke(app, ["adapters", "list"], env={**env, "COLUMNS": "200"})
    assert "support@1" in listed.output and "production" in listed.output

    keys = runner.invoke(app, ["keys", "list"], env={**env, "COLUMNS": "200"})
    assert "admin" in keys.output and "ops" in keys.output


def test_admin_errors_are_readable(live: Settings) -> None:
    env = {"LORALOOP_CLI_GATEWAY_URL": f"http://127.0.0.1:{live.serve.port}"}
    unauthorized = runner.invoke(app, ["adapters", "list"], env=env)
    assert unauthorized.exit_code == 1
    assert "401" in unauthorized.output
    down = runner.invoke(
        app,
        ["adapters", "list"],
        env={"LORALOOP_CLI_GATEWAY_URL": f"http://127.0.0.1:{free_port()}"},
    )
    assert down.exit_code == 1
    assert "does not answer" in down.output
    bad_role = runner.invoke(
        app,
        ["keys", "create", "--role", "root"],
        env={"LORALOOP_DB_URL": live.db.url.get_secret_value()},
    )
    assert bad_role.exit_code == 1
    assert "unknown role 'root'" in bad_role.output
