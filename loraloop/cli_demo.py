"""`loraloop demo`: the closed loop, end to end, on a platform of its own (or a running one)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import TaskID

from loraloop.cli_retrain import BarReporter, progress_bar
from loraloop.cli_support import CliError, console, friendly
from loraloop.db import create_db_engine
from loraloop.demo import RETRAIN_OVERRIDES, SCENARIO, Demo, DemoResult, Progress, Scenario
from loraloop.settings import Settings, get_settings

BOOT_TIMEOUT_S = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_env(data: Path) -> dict[str, str]:
    """A platform of the demo's own: its database, adapters, runs and ports."""
    return {
        "LORALOOP_DB_URL": f"sqlite:///{data / 'loraloop.db'}",
        "LORALOOP_SERVE_PORT": str(_free_port()),
        "LORALOOP_ENGINE_PORT": str(_free_port()),
        "LORALOOP_ENGINE_LOG_DIR": str(data / "logs"),
        "LORALOOP_SERVE_ADAPTER_STORE": str(data / "adapters"),
        "LORALOOP_SERVE_RECONCILE_INTERVAL_S": "1",
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(data / "spool.jsonl"),
        "LORALOOP_RETRAIN_RUNS_DIR": str(data / "runs"),
        "LORALOOP_WORKER_IN_GATEWAY": "false",
    }


@contextmanager
def platform(data: Path) -> Iterator[str]:
    """`loraloop run` as a child process; yields the gateway URL, stops it after."""
    loraloop = str(Path(sys.executable).parent / "loraloop")
    env = {**os.environ}
    subprocess.run([loraloop, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = data / "platform.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([loraloop, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['LORALOOP_SERVE_PORT']}"
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise CliError(f"the platform exited ({proc.returncode}); see {log}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CliError(f"the platform did not start in {BOOT_TIMEOUT_S} s; see {log}")
            time.sleep(1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


@friendly
def demo(
    gateway: Annotated[
        str | None,
        typer.Option(help="Use this running gateway (same settings) instead of starting one."),
    ] = None,
    alias: Annotated[str, typer.Option(help="The adapter the demo trains.")] = "lumen",
    limit: Annotated[
        int | None, typer.Option(min=10, help="Only this many scenario questions (quicker).")
    ] = None,
    data: Annotated[Path, typer.Option(help="The demo's own data directory (wiped first).")] = Path(
        "data/demo"
    ),
) -> None:
    """Serve, capture, review, curate, train, evaluate, promote; Rouge-L before and after."""
    scenario = Scenario.load(SCENARIO, limit)
    if gateway is None:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        os.environ.update(demo_env(data.resolve()))
    settings = get_settings()
    tuned = {
        k: v
        for k, v in RETRAIN_OVERRIDES.items()
        if f"LORALOOP_RETRAIN_{k.upper()}" not in os.environ
    }
    settings.retrain = settings.retrain.model_copy(update=tuned)
    console.print(
        f"support-desk scenario: {len(scenario.train)} questions as traffic, "
        f"{len(scenario.heldout)} held out; adapter '{alias}' on {settings.model.name}"
    )
    began = time.perf_counter()
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def step(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        if gateway is None:
            boot = bar.add_task("starting the platform (vLLM on CPU)", total=None)
            with platform(data) as url:
                bar.update(boot, total=1, completed=1)
                result = _run(settings, url, alias, scenario, step, BarReporter(bar))
        else:
            result = _run(settings, gateway, alias, scenario, step, BarReporter(bar))
    outcome = result.outcome
    console.print(
        f"traffic {result.traffic} · reviews: {result.corrected} corrected, "
        f"{result.approved} approved · {outcome.train_examples} train / "
        f"{outcome.eval_examples} eval examples"
    )
    console.print(f"gate: {outcome.summary()} ({'; '.join(outcome.gate.reasons)})")
    after = "not promoted" if result.after is None else f"{result.after:.3f}"
    console.print(
        f"[bold]held-out Rouge-L: base {result.before:.3f} -> {alias} {after}[/] "
        f"({len(scenario.heldout)} questions never trained on)"
    )
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in result.seconds.items())
    console.print(f"took {time.perf_counter() - began:.0f} s ({stages})")
    console.print(f"run report: {outcome.run_dir / 'report.html'}")


def _run(
    settings: Settings,
    url: str,
    alias: str,
    scenario: Scenario,
    step: Progress,
    reporter: BarReporter,
) -> DemoResult:
    db = create_db_engine(settings.db.url.get_secret_value())
    try:
        return Demo(db, settings, url, alias).run(scenario, step, reporter)
    finally:
        db.dispose()
