"""`loraloop demo`: the closed loop, end to end, on a platform of its own (or a running one);
with `--objective`, the loop learning from end users' thumbs to drop production's flaw."""

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import Progress as Bars
from rich.table import Table
from sqlalchemy import Engine

from loraloop.cli_retrain import Objective
from loraloop.cli_support import BarReporter, CliError, console, friendly, progress_bar
from loraloop.db import create_db_engine
from loraloop.demo import RETRAIN_OVERRIDES, SCENARIO, Demo, Scenario
from loraloop.demo_preferences import PREFERENCE_OVERRIDES, PreferenceDemo
from loraloop.demo_tools import TOOLS_OVERRIDES, TOOLS_SCENARIO, ToolsDemo
from loraloop.flaws import SCENARIOS
from loraloop.launch import PlatformError, free_port, launch
from loraloop.settings import Settings, get_settings
from retrain.outcome import RunOutcome

T = TypeVar("T")


class DemoScenario(StrEnum):
    support = "support"
    tools = "tools"


BOOT_TIMEOUT_S = 900
FLAWED = SCENARIOS / "support_desk_flawed.jsonl"


def demo_env(data: Path) -> dict[str, str]:
    """A platform of the demo's own: its database, adapters, runs and ports."""
    return {
        "LORALOOP_DB_URL": f"sqlite:///{data / 'loraloop.db'}",
        "LORALOOP_SERVE_PORT": str(free_port()),
        "LORALOOP_ENGINE_PORT": str(free_port()),
        "LORALOOP_ENGINE_LOG_DIR": str(data / "logs"),
        "LORALOOP_SERVE_ADAPTER_STORE": str(data / "adapters"),
        "LORALOOP_SERVE_RECONCILE_INTERVAL_S": "1",
        "LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH": str(data / "spool.jsonl"),
        "LORALOOP_RETRAIN_RUNS_DIR": str(data / "runs"),
        "LORALOOP_WORKER_IN_GATEWAY": "false",
        "LORALOOP_SERVE_REQUIRE_KEYS": "false",  # the demo talks to its own gateway locally
        "LORALOOP_ENGINE_API_KEY": secrets.token_urlsafe(32),  # its retraining evaluates too
    }


@contextmanager
def platform(data: Path) -> Iterator[str]:
    """The demo's own platform (settings from the environment); yields the gateway URL."""
    env = {**os.environ}
    try:
        with launch(env, data / "platform.log", BOOT_TIMEOUT_S):
            yield f"http://127.0.0.1:{env['LORALOOP_SERVE_PORT']}"
    except PlatformError as exc:
        raise CliError(str(exc)) from None


@friendly
def demo(
    gateway: Annotated[
        str | None,
        typer.Option(help="Use this running gateway (same settings) instead of starting one."),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option(help="The adapter the demo trains (default: lumen; orders for tools)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=10, help="Only this many scenario questions (quicker).")
    ] = None,
    data: Annotated[Path, typer.Option(help="The demo's own data directory (wiped first).")] = Path(
        "data/demo"
    ),
    objective: Annotated[
        Objective | None,
        typer.Option(
            help="Learn from end users' thumbs with this objective (dpo, kto, sft+kto, auto, "
            "...): a flawed production adapter, thumbs on its answers, 20 corrections; "
            "the held-out flaw rate before and after."
        ),
    ] = None,
    scenario_name: Annotated[
        DemoScenario,
        typer.Option(
            "--scenario",
            help="support: the support desk's chat; tools: the order desk's agent traffic "
            "(tool calls reviewed and trained on; tool-call accuracy before and after).",
        ),
    ] = DemoScenario.support,
) -> None:
    """Serve, capture, review, curate, train, evaluate, promote; Rouge-L before and after."""
    tools = scenario_name is DemoScenario.tools
    if tools and objective is not None:
        raise CliError(
            "--objective is the support desk's thumbs demo; the tools scenario "
            "learns from reviewers' corrections of calls"
        )
    path = TOOLS_SCENARIO if tools else SCENARIO if objective is None else FLAWED
    scenario = Scenario.load(path, limit)
    alias = alias or ("orders" if tools else "lumen")
    if gateway is None:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        os.environ.update(demo_env(data.resolve()))
    settings = get_settings()
    wanted = RETRAIN_OVERRIDES | (TOOLS_OVERRIDES if tools else {})
    if objective is not None:
        wanted |= PREFERENCE_OVERRIDES | {"objective": objective.value}
    tuned = {k: v for k, v in wanted.items() if f"LORALOOP_RETRAIN_{k.upper()}" not in os.environ}
    settings.retrain = settings.retrain.model_copy(update=tuned)
    kind = "order-desk (tool calling)" if tools else "support-desk"
    console.print(
        f"{kind} scenario{' with a flawed production adapter' if objective else ''}: "
        f"{len(scenario.train)} questions as traffic, {len(scenario.heldout)} held out; "
        f"adapter '{alias}' on {settings.model.name}"
    )
    if objective is not None:
        _flawed(settings, gateway, data, alias, scenario)
        return
    if tools:
        _tools(settings, gateway, data, alias, scenario)
        return
    began = time.perf_counter()
    result = _with_bars(
        settings,
        gateway,
        data,
        lambda db, url, bars: Demo(db, settings, url, alias).run(scenario, bars.advance, bars),
    )
    outcome = result.outcome
    console.print(
        f"traffic {result.traffic} · reviews: {result.corrected} corrected, "
        f"{result.approved} approved · {outcome.train_examples} train / "
        f"{outcome.eval_examples} eval examples"
    )
    _print_decision(outcome)
    after = "not promoted" if result.after is None else f"{result.after:.3f}"
    console.print(
        f"[bold]held-out Rouge-L: base {result.before:.3f} -> {alias} {after}[/] "
        f"({len(scenario.heldout)} questions never trained on)"
    )
    _print_footer(began, result.seconds, outcome)


def _print_decision(outcome: RunOutcome) -> None:
    reasons = outcome.gate.reasons if outcome.gate else []
    console.print(f"training: {outcome.train.get('stop_reason')}")
    console.print(f"gate: {outcome.summary()} ({'; '.join(reasons)})")


def _print_footer(began: float, seconds: dict[str, float], outcome: RunOutcome) -> None:
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items())
    console.print(f"took {time.perf_counter() - began:.0f} s ({stages})")
    console.print(f"run report: {outcome.run_dir / 'report.html'}")


def _on_platform(bar: Bars, gateway: str | None, data: Path, run: Callable[[str], T]) -> T:
    """`run` against the given gateway, else against a platform of the demo's own."""
    if gateway is not None:
        return run(gateway)
    boot = bar.add_task("starting the platform (vLLM on CPU)", total=None)
    with platform(data) as url:
        bar.update(boot, total=1, completed=1)
        return run(url)


def _with_bars(
    settings: Settings,
    gateway: str | None,
    data: Path,
    body: Callable[[Engine, str, BarReporter], T],
) -> T:
    """`body(database, gateway URL, progress)` under progress bars, against the given
    gateway or a platform of the demo's own."""
    with progress_bar() as bar:
        reporter = BarReporter(bar)

        def run(url: str) -> T:
            db = create_db_engine(settings.db.url.get_secret_value())
            try:
                return body(db, url, reporter)
            finally:
                db.dispose()

        return _on_platform(bar, gateway, data, run)


def _tools(
    settings: Settings, gateway: str | None, data: Path, alias: str, scenario: Scenario
) -> None:
    began = time.perf_counter()
    result = _with_bars(
        settings,
        gateway,
        data,
        lambda db, url, bars: ToolsDemo(db, settings, url, alias).run_tools(
            scenario, bars.advance, bars
        ),
    )
    outcome = result.outcome
    console.print(
        f"agent traffic {result.traffic} · reviews: {result.corrected} corrected, "
        f"{result.approved} approved · {outcome.train_examples} train / "
        f"{outcome.eval_examples} eval examples"
    )
    _print_decision(outcome)
    table = Table("held-out", "exact calls", "right function", "schema-valid calls")
    for name, acc in ((result.production, result.before), (alias, result.after)):
        if acc is None:
            table.add_row(alias, "not promoted", "", "")
            continue
        table.add_row(
            name,
            f"{acc.exact_calls:.2f}",
            f"{acc.right_function:.2f}",
            f"{acc.valid_calls}/{acc.calls_made}",
        )
    console.print(table)
    after = "not promoted" if result.after is None else f"{result.after.exact_calls:.2f}"
    console.print(
        f"[bold]held-out exact tool calls: {result.production} {result.before.exact_calls:.2f} "
        f"-> {alias} "
        f"{after}[/] ({result.before.calls_wanted} questions never trained on)"
    )
    _print_footer(began, result.seconds, outcome)


def _flawed(
    settings: Settings, gateway: str | None, data: Path, alias: str, scenario: Scenario
) -> None:
    began = time.perf_counter()
    result = _with_bars(
        settings,
        gateway,
        data,
        lambda db, url, bars: PreferenceDemo(db, settings, url, alias).run_flawed(
            scenario.train, scenario.heldout, bars.advance, bars
        ),
    )
    j, outcome = result.judgments, result.outcome
    console.print(
        f"production {alias}@{result.production_version}: {j.answers} answers, {j.flawed} "
        f"flawed · end users: {j.thumbs_down} thumbs down of {j.answers} ({j.flipped} flipped) "
        f"· reviewer: {j.corrected} corrections"
    )
    if outcome.objective:
        console.print(f"objective: {outcome.objective['reason']}")
    _print_decision(outcome)
    before, after = result.before, result.after
    now = (
        "not promoted"
        if after is None
        else f"{alias}@{outcome.version} {after.flaw_rate:.2f} (Rouge-L {after.rouge_l:.3f})"
    )
    console.print(
        f"[bold]held-out flaw rate: production {before.flaw_rate:.2f} "
        f"(Rouge-L {before.rouge_l:.3f}) -> {now}[/] ({len(scenario.heldout)} questions)"
    )
    _print_footer(began, result.seconds, outcome)
