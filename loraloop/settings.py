"""All of loraloop's settings: each package's own model, composed.

Nothing is read at import time; `get_settings()` reads the environment (and `.env`)
when called, so tests and the CLI decide when.
"""

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feedback.drift.settings import DriftSettings
from feedback.settings import FeedbackSettings
from retrain.settings import RetrainSettings
from serve.settings import (
    EngineSettings,
    ModelSettings,
    RolloutSettings,
    ServeSettings,
    StoreSettings,
    TracingSettings,
)


class DatabaseSettings(BaseSettings):
    """Where the system of record lives: SQLite file by default, PostgreSQL by URL."""

    model_config = SettingsConfigDict(env_prefix="LORALOOP_DB_", env_file=".env", extra="ignore")

    url: SecretStr = Field(
        SecretStr("sqlite:///data/loraloop.db"),
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db",
    )
    echo: bool = False


class CliSettings(BaseSettings):
    """How the CLI reaches a running gateway for admin commands."""

    model_config = SettingsConfigDict(env_prefix="LORALOOP_CLI_", env_file=".env", extra="ignore")

    gateway_url: str | None = Field(None, description="Default: the local gateway from settings.")
    api_key: SecretStr | None = Field(None, description="An admin key for admin commands.")


class WorkerSettings(BaseSettings):
    """Scheduled jobs (drift checks, retraining): when, and in which process."""

    model_config = SettingsConfigDict(
        env_prefix="LORALOOP_WORKER_", env_file=".env", extra="ignore"
    )

    in_gateway: bool = Field(
        True, description="Run the scheduler inside the gateway (else: `loraloop worker`)."
    )
    drift_cron: str = Field("0 * * * *", description="When drift jobs run (crontab, UTC).")
    retrain_cron: str | None = Field(
        None, description="When retraining runs per alias (crontab, UTC); unset: on drift only."
    )
    sync_interval_s: float = Field(60, gt=0, description="How often new aliases get jobs.")
    lock_ttl_s: float = Field(3600, gt=0, description="A crashed run's lock expires after.")
    retrain_lock_ttl_s: float = Field(6 * 3600, gt=0, description="The same, for retraining.")
    lease_ttl_s: float = Field(
        30, ge=1, description="A standby worker takes over this long after the leader died."
    )

    @field_validator("drift_cron", "retrain_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression: {value!r} ({exc})") from exc
        return value


class Settings(BaseModel):
    """The composed settings handed to the app factory and the CLI."""

    serve: ServeSettings = Field(default_factory=ServeSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    cli: CliSettings = Field(default_factory=CliSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    @model_validator(mode="after")
    def _train_as_served(self) -> "Settings":
        """Training renders conversations with the engine's chat template unless told
        otherwise: an adapter trained on another rendering answers worse when served."""
        if self.retrain.chat_template is None:
            self.retrain.chat_template = self.engine.chat_template
        return self

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data, with secrets and URL passwords masked."""
        data = json.loads(self.model_dump_json())
        data["db"]["url"] = mask_url(self.db.url.get_secret_value())
        for section, name in SECRETS:
            if data[section].get(name) is not None:
                data[section][name] = "***"
        for section, name in URLS:  # webhooks and endpoints often carry a token
            if data[section].get(name) is not None:
                data[section][name] = mask_url(str(data[section][name]), everything=True)
        if data["retrain"].get("mlflow_uri"):
            data["retrain"]["mlflow_uri"] = mask_url(data["retrain"]["mlflow_uri"])
        return data


SECRETS = [("cli", "api_key"), ("engine", "api_key"), ("retrain", "judge_api_key")]
URLS = [("drift", "alert_webhook_url"), ("rollout", "alert_webhook_url"), ("retrain", "judge_url")]


def mask_url(url: str, everything: bool = False) -> str:
    """Hide the password of a URL (`scheme://user:***@host/db`); with `everything`, its
    user, path and query too (`https://hooks.example/***`): a webhook's secret is its path."""
    parts = urlsplit(url)
    if everything:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        rest = "/***" if parts.path.strip("/") or parts.query or parts.username else ""
        return urlunsplit((parts.scheme, host + port, rest, "", ""))
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def get_settings() -> Settings:
    """Read every section from the environment now."""
    return Settings()
