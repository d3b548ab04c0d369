"""The CLI's bad-input paths: one readable message, a non-zero exit, no traceback."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loraloop import db
from loraloop.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_config_prints_effective_settings_masked() -> None:
    result = invoke(
        "config",
        "--json",
        env={
            "LORALOOP_DB_URL": "postgresql+psycopg://u:topsecret@h/db",
            "LORALOOP_ENGINE_PORT": "8111",
        },
    )
    assert result.exit_code == 0, result.output
    assert "topsecret" not in result.output
    assert "u:***@h/db" in result.output
    assert '"port": 8111' in result.output


def test_bad_setting_value_names_the_variable() -> None:
    # Through the installed console script: what a user runs.
    exe = Path(sys.executable).parent / "loraloop"
    result = subprocess.run(
        [str(exe), "config"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LORALOOP_ENGINE_PORT": "abc"},
    )
    assert result.returncode == 2
    assert "LORALOOP_ENGINE_PORT='abc'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_db_upgrade_and_downgrade(db_url: str) -> None:
    env = {"LORALOOP_DB_URL": db_url}
    assert invoke("db", "current", env=env).output.strip() == "empty"
    result = invoke("db", "upgrade", env=env)
    assert result.exit_code == 0, result.output
    assert f"revision {db.head_revision()}" in result.output
    assert invoke("db", "downgrade", "base", env=env).exit_code == 0
    assert invoke("db", "current", env=env).output.strip() == "empty"


def test_unreachable_database_is_a_readable_error() -> None:
    result = invoke(
        "db",
        "upgrade",
        env={
            "LORALOOP_DB_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
        },
    )
    assert result.exit_code == 1
    assert "database error" in result.output
    assert "Traceback" not in result.output


def test_run_refuses_a_busy_gateway_port(port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        result = invoke("run", "--port", str(port))
    assert result.exit_code == 1
    assert f"gateway port {port}" in result.output
    assert "already in use" in result.output


@pytest.fixture
def run_env(tmp_path: Path, port: int) -> dict[str, str]:
    from loraloop.launch import free_port

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert invoke("db", "upgrade", env={"LORALOOP_DB_URL": url}).exit_code == 0
    return {
        "LORALOOP_DB_URL": url,
        "LORALOOP_SERVE_PORT": str(port),
        "LORALOOP_ENGINE_PORT": str(free_port()),
        "LORALOOP_ENGINE_ENTRYPOINT": "tests.fake_engine",
        "LORALOOP_ENGINE_LOG_DIR": str(tmp_path / "logs"),
    }


def test_run_with_missing_model_names_path_and_pull(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-model"
    result = invoke("run", env={**run_env, "LORALOOP_MODEL_PATH": str(missing)})
    assert result.exit_code == 1
    assert str(missing) in result.output
    assert "loraloop models pull" in result.output


def test_run_with_engine_that_will_not_start(run_env: dict[str, str], fake_model_dir: Path) -> None:
    result = invoke(
        "run",
        env={
            **run_env,
            "LORALOOP_MODEL_PATH": str(fake_model_dir),
            "FAKE_ENGINE_MODE": "crash",
        },
    )
    assert result.exit_code == 1
    assert "fake engine could not load the model" in result.output


def test_run_without_schema_says_to_migrate(tmp_path: Path, port: int) -> None:
    result = invoke(
        "run",
        env={
            "LORALOOP_DB_URL": f"sqlite:///{tmp_path / 'empty.db'}",
            "LORALOOP_SERVE_PORT": str(port),
        },
    )
    assert result.exit_code == 1
    assert "loraloop db upgrade" in result.output


def test_the_cli_starts_without_loading_torch() -> None:
    """`loraloop --help` and the light commands must not pay for torch, transformers or trl
    (seconds and hundreds of MB): heavy modules are imported when a run needs them."""
    heavy = "{'torch', 'transformers', 'trl'}"
    code = f"import sys, loraloop.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
