"""What every CLI command shares: consoles, and turning user-caused errors into messages."""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.exc import SQLAlchemyError

from feedback.drift.settings import DriftSettings
from feedback.settings import FeedbackSettings
from loraloop.settings import CliSettings, DatabaseSettings, WorkerSettings
from retrain.dataset import DatasetError
from retrain.evaluate import EvaluationError
from retrain.pipeline import Reporter, RetrainError
from retrain.search import SearchError
from retrain.settings import RetrainSettings
from serve.engine import EngineError
from serve.model_store import ModelError
from serve.registry import RegistryError
from serve.settings import (
    EngineSettings,
    ModelSettings,
    RolloutSettings,
    ServeSettings,
    StoreSettings,
    TracingSettings,
)

console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
SECTIONS: tuple[type[BaseSettings], ...] = (
    ServeSettings,
    EngineSettings,
    StoreSettings,
    ModelSettings,
    DatabaseSettings,
    FeedbackSettings,
    DriftSettings,
    RetrainSettings,
    WorkerSettings,
    RolloutSettings,
    CliSettings,
    TracingSettings,
)


class CliError(Exception):
    """A failure already worded for the user."""


def describe_validation_error(exc: ValidationError) -> str:
    """Name the environment variable behind each invalid setting."""
    prefixes = {cls.__name__: cls.model_config.get("env_prefix", "") for cls in SECTIONS}
    prefix = prefixes.get(exc.title, "")
    lines = ["invalid settings:"]
    for error in exc.errors():
        field = "_".join(str(part) for part in error["loc"])
        name = f"{prefix}{field}".upper() if prefix else field
        lines.append(f"  {name}={error.get('input')!r}: {error['msg']}")
    return "\n".join(lines)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(message, style="red", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code) from None


def friendly(func: F) -> F:
    """Turn the errors a user can cause into one message and exit code 1 (2 for settings)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            fail(f"error: {describe_validation_error(exc)}", 2)
        except (CliError, ModelError, EngineError) as exc:
            fail(f"error: {exc}")
        except (DatasetError, RetrainError, EvaluationError, RegistryError, SearchError) as exc:
            fail(f"error: {exc}")
        except SQLAlchemyError as exc:
            fail(f"database error: {exc.__class__.__name__}: {exc}")

    return wrapper  # type: ignore[return-value]


class BarReporter(Reporter):
    """One rich bar per stage: progress of retraining runs, drift runs and the demo."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def stage(self, name: str) -> None:
        """A new stage ends the ones before it (their bars show done)."""
        self.finish()
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=None)

    def finish(self) -> None:
        for task in self.progress.tasks:
            if task.id in self.tasks.values() and not task.finished:
                done = task.completed or 1
                self.progress.update(task.id, total=done, completed=done)

    def advance(self, stage: str, done: int, total: int, detail: str = "") -> None:
        if stage not in self.tasks:
            self.stage(stage)
        description = f"{stage} {detail}".strip()
        self.progress.update(
            self.tasks[stage], completed=done, total=total, description=description
        )


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def setup_logging() -> None:
    """Log lines of long-running commands (run, engine, worker) on stderr, through rich."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # every health probe, otherwise
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
