"""Settings of the system of record."""

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeedbackSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORALOOP_FEEDBACK_", env_file=".env", extra="ignore"
    )

    capture_queue_size: int = Field(10_000, ge=1, description="Records held before spilling.")
    capture_batch_size: int = Field(500, ge=1)
    capture_spool_path: Path = Path("data/capture-spool.jsonl")
    capture_retry_interval_s: float = Field(2.0, gt=0, description="Spool replay attempts.")
    feedback_wait_s: float = Field(
        5.0, ge=0, description="A rating for a still-queued interaction waits this long for it."
    )

    review_labels: list[str] = Field(
        default_factory=lambda: ["wrong", "hallucination", "tone", "format", "unsafe"],
        description="Labels a reviewer may attach.",
    )
    reviews_per_item: int = Field(1, ge=1, description="k: reviews wanted per item (agreement).")
    review_lease_s: float = Field(600, gt=0, description="How long a reviewer holds an item.")
    sample_negative_weight: float = Field(4.0, ge=0, description="Boost for thumbs-down items.")
    sample_new_version_weight: float = Field(2.0, ge=0, description="Boost for new versions.")
    sample_new_version_days: float = Field(7, ge=0, description="A version is new this long.")
    sample_window: int = Field(5000, ge=1, description="Newest candidates considered.")
    agreement_flag_below: float = Field(0.4, description="Flag reviewers below this alpha.")
    pii_patterns: dict[str, str] = Field(
        default_factory=dict, description="More PII to scrub on export: {name: regex}."
    )
    golden_min_score: float = Field(
        4, ge=1, le=5, description="An uncorrected response joins a golden set at this score."
    )
    # Preference data (feedback/signals.py): when a judgment makes an answer desirable or not.
    desirable_score: float = Field(
        4, ge=1, le=5, description="Mean review score at or above which an answer is desirable."
    )
    undesirable_score: float = Field(
        2, ge=1, le=5, description="Mean review score at or below which it is undesirable."
    )
    desirable_stars: int = Field(4, ge=1, le=5, description="End-user stars: desirable from.")
    undesirable_stars: int = Field(2, ge=1, le=5, description="End-user stars: undesirable to.")

    @model_validator(mode="after")
    def _thresholds_apart(self) -> "FeedbackSettings":
        if self.undesirable_score >= self.desirable_score:
            raise ValueError("undesirable_score must be below desirable_score")
        if self.undesirable_stars >= self.desirable_stars:
            raise ValueError("undesirable_stars must be below desirable_stars")
        return self
