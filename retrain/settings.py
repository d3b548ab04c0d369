"""Settings of retraining: what data, how it is curated, how the adapter is trained."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrainSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORALOOP_RETRAIN_", env_file=".env", extra="ignore"
    )

    seed_files: list[Path] = Field(
        default_factory=list, description="Chat-format JSONL files added to the reviewed data."
    )
    min_score: float = Field(4, ge=1, le=5, description="Uncorrected responses need this score.")
    min_examples: int = Field(500, ge=1, description="Training refuses below this many.")
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="Held out for the gate.")
    min_chars: int = Field(2, ge=0, description="Shorter answers are dropped.")
    max_chars: int = Field(4000, ge=1, description="Longer conversations are dropped.")
    near_duplicate: float = Field(
        0.85, gt=0, le=1, description="MinHash Jaccard at which two examples are one."
    )

    quantize: Literal["auto", "4bit", "none"] = Field(
        "auto", description="auto: 4-bit on CUDA, float32 LoRA on CPU (4-bit is ~10x slower)."
    )
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    epochs: float = Field(2, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    max_seq_len: int = Field(256, ge=16)
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints.")
    seed: int = 0
    runs_dir: Path = Field(Path("data/runs"), description="Checkpoints, adapters, reports.")

    metrics: list[str] = Field(
        default_factory=lambda: ["rouge_l", "token_f1", "exact_match"],
        description="Gate metrics (retrain.metrics.METRICS).",
    )
    primary_metric: str = Field("rouge_l", description="The candidate must win on this one.")
    margin: float = Field(0.01, ge=0, description="Least gain on the primary metric to promote.")
    tolerance: float = Field(0.02, ge=0, description="Most loss allowed on any other metric.")
    eval_max_tokens: int = Field(128, ge=1, description="Answer length at evaluation.")
    eval_concurrency: int = Field(16, ge=1)
    canary_share: float = Field(
        0.0, ge=0, le=1, description="Above 0: a passing candidate goes canary, not production."
    )

    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI, e.g. sqlite:///data/mlflow.db; unset: no MLflow."
    )
