"""Settings of the system of record."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeedbackSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORALOOP_FEEDBACK_", env_file=".env", extra="ignore"
    )

    capture_queue_size: int = Field(10_000, ge=1, description="Records held before spilling.")
    capture_batch_size: int = Field(500, ge=1)
    capture_spool_path: Path = Path("data/capture-spool.jsonl")
    capture_retry_interval_s: float = Field(2.0, gt=0, description="Spool replay attempts.")
