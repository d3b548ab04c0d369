"""Settings of retraining: what data, how it is curated, how the adapter is trained."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrainSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORALOOP_RETRAIN_", env_file=".env", extra="ignore"
    )

    seed_files: list[Path] = Field(
        default_factory=list, description="Chat-format JSONL files added to the reviewed data."
    )
    min_score: float = Field(4, ge=1, le=5, description="Uncorrected responses need this score.")
    min_examples: int = Field(
        50, ge=1, description="Training refuses below this many curated training examples."
    )
    min_examples_first: int = Field(
        10,
        ge=1,
        description="SFT before a preference stage needs this many (auto runs it whenever "
        "there are): a preference objective alone, from the base, loses the domain.",
    )
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="Held out for the gate.")
    min_chars: int = Field(2, ge=0, description="Shorter answers are dropped.")
    max_chars: int = Field(4000, ge=1, description="Longer conversations are dropped.")
    near_duplicate: float = Field(
        0.85, gt=0, le=1, description="Jaccard (word 3-grams) at which two examples are one."
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
    max_epochs: float = Field(
        100, gt=0, description="Budget: passes over the training data (the plateau ends first)."
    )
    max_steps: int = Field(10_000, ge=1, description="Budget: optimiser steps.")
    max_minutes: float = Field(
        240, ge=0, description="Budget: wall-clock minutes of training; 0: none."
    )
    min_steps: int = Field(0, ge=0, description="The plateau may not end a run before this.")
    fixed_steps: int = Field(
        120, ge=1, description="Length of a run with no validation split to stop on."
    )
    validation_fraction: float = Field(
        0.1, ge=0, lt=1, description="Share of training data for the validation loss; 0: off."
    )
    validation_by: Literal["answer", "example"] = Field(
        "answer",
        description="answer: examples sharing an answer validate together (no leak through "
        "paraphrases); example: each example on its own.",
    )
    validation_min: int = Field(8, ge=1)
    validation_max: int = Field(256, ge=1)
    eval_every: int = Field(
        0, ge=0, description="Steps between validation losses; 0: from the validation size."
    )
    eval_every_min: int = Field(5, ge=1)
    eval_every_max: int = Field(200, ge=1)
    patience: int = Field(
        0, ge=0, description="Evaluations without improvement before stopping; 0: from the data."
    )
    patience_epochs: float = Field(
        2, ge=0, description="Auto patience spans this many passes over the training data..."
    )
    patience_min_steps: int = Field(20, ge=1, description="...and at least this many steps...")
    patience_max_steps: int = Field(400, ge=1, description="...and at most this many.")
    min_improvement: float = Field(
        0.01, ge=0, lt=1, description="Relative drop of the validation loss that counts."
    )
    min_delta: float = Field(
        1e-3,
        ge=0,
        description="...and the least absolute drop (nats) that counts, so that a loss "
        "sliding towards zero (separable preference pairs) still reaches a plateau.",
    )
    smoothing: int = Field(
        3, ge=1, description="Validation losses averaged before comparing (noisy small sets)."
    )
    keep_tolerance: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="A later validation loss within this fraction of the lowest keeps its "
        "weights instead: as good on validation, trained longer (at 70 examples 0.02 "
        "beat 0 by 0.02 held-out Rouge-L over three domains, BENCHMARKS.md).",
    )
    warmup_steps: int = Field(10, ge=0, description="Linear learning-rate warm-up.")
    lr_drops: int = Field(
        1,
        ge=0,
        description="On a plateau, go back to the best weights and train on at the rate times "
        "lr_drop_factor, this many times before stopping (0: the first plateau stops).",
    )
    lr_drop_factor: float = Field(0.1, gt=0, lt=1, description="Rate cut at each plateau.")
    learning_rate: float = Field(
        1e-3,
        gt=0,
        description="Peak rate after warm-up for up to learning_rate_examples training "
        "examples; 1e-3 beat 5e-4 and 2e-4 there on three domains (BENCHMARKS.md). Large "
        "models under QLoRA usually want 1e-4 to 2e-4.",
    )
    learning_rate_examples: int = Field(
        64,
        ge=0,
        description="Above this many training examples the peak rate falls in proportion to "
        "their count (2.5e-4 at 256), down to learning_rate_min; 0: the rate is never scaled.",
    )
    learning_rate_min: float = Field(
        2e-4, gt=0, description="The least the size scaling lowers the rate to."
    )
    batch_size: int = Field(8, ge=1)
    micro_batch_tokens: int = Field(
        1024,
        ge=16,
        description="Padded tokens one forward pass may hold: a batch of long rows is split "
        "and its gradients accumulated, the same optimiser step with bounded memory.",
    )
    max_seq_len: int = Field(
        1024,
        ge=16,
        description="Tokens per example, at most: a row is padded only to its batch's longest, "
        "so this bounds long conversations (an agent's tool definitions alone take hundreds).",
    )
    chat_template: str | None = Field(
        None,
        description="The chat template training renders conversations with (auto, model, a "
        "shipped name or a path); unset: the engine's LORALOOP_ENGINE_CHAT_TEMPLATE, so an "
        "adapter learns conversations as they are served.",
    )
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints.")
    seed: int = 0
    search: dict[str, list[float]] = Field(
        default_factory=dict,
        description='Trials, e.g. {"learning_rate": [1e-4, 3e-4, 1e-3]} or {"lora_r": [8, 16]}: '
        "every combination is trained, the lowest validation loss wins.",
    )
    search_max_trials: int = Field(6, ge=1, description="Most trials a search may run.")
    runs_dir: Path = Field(Path("data/runs"), description="Checkpoints, adapters, reports.")

    objective: Literal["auto", "sft", "dpo", "kto", "sft+dpo", "sft+kto"] = Field(
        "sft",
        description="What to learn from: sft (corrections and good answers), dpo (preference "
        "pairs), kto (answers judged good or bad), or SFT then either on the same adapter; "
        "auto picks from the data there is (retrain/objectives.py).",
    )
    preference_files: list[Path] = Field(
        default_factory=list,
        description="JSONL files of preference rows (TRL conversational: prompt, chosen, "
        "rejected; or prompt, completion, label) added to the stored judgments.",
    )
    min_pairs: int = Field(
        20, ge=1, description="DPO needs this many curated training pairs (chosen, rejected)."
    )
    min_judged: int = Field(
        40, ge=1, description="KTO needs this many curated judged answers for training..."
    )
    min_judged_class: int = Field(
        10, ge=1, description="...with at least this many desirable and as many undesirable."
    )
    preference_learning_rate: float = Field(
        1e-4,
        gt=0,
        description="Peak rate of a DPO/KTO stage. A preference loss moves the likelihood of "
        "whole answers, with no target text to hold it: at the demo's SFT rate (2e-3) a "
        "10-step KTO stage moved answers' log-likelihood by ~125 nats and broke them.",
    )
    preference_beta: float = Field(
        0.1, gt=0, description="DPO/KTO beta: how far the policy may move from the reference."
    )

    metrics: list[str] = Field(
        default_factory=lambda: ["rouge_l", "token_f1", "exact_match"],
        description="Gate metrics (retrain.metrics.METRICS).",
    )
    primary_metric: str = Field("rouge_l", description="The candidate must win on this one.")
    margin: float = Field(0.01, ge=0, description="Least gain on the primary metric to promote.")
    tolerance: float = Field(0.02, ge=0, description="Most loss allowed on any other metric.")
    eval_max_tokens: int = Field(128, ge=1, description="Answer length at evaluation.")
    eval_max_examples: int = Field(
        1000, ge=1, description="Held-out items the gate answers, at most (large datasets)."
    )
    slice_min_examples: int = Field(5, ge=1, description="A slice this large can reject.")
    slice_tolerance: float = Field(0.05, ge=0, description="Most loss allowed in any slice.")
    judge_url: str | None = Field(
        None, description="OpenAI-compatible endpoint of the judge; unset: the engine."
    )
    judge_model: str | None = Field(None, description="Judge model; unset: the base model.")
    judge_api_key: SecretStr | None = None
    judge_template: str = Field("judge-pairwise", description="The rubric prompt template.")
    judge_agreement_pairs: int = Field(
        60, ge=0, description="Human-ordered pairs the judge is checked on, at most."
    )
    eval_concurrency: int = Field(16, ge=1)
    fewshot_k: int = Field(
        4,
        ge=0,
        description="Training examples in each prompting arm's prompt (the base model with "
        "k fixed, and k retrieved, examples), compared with the adapter; 0: no arms.",
    )
    fewshot_max_tokens: int = Field(
        1024, ge=1, description="Most prompt tokens an arm's examples may add to a request."
    )
    retention_set: Path | None = Field(
        default_factory=lambda: Path(__file__).resolve().parent / "retention" / "general.jsonl",
        description="General prompts for the forgetting check (JSONL: id, category, "
        "messages); empty: no check.",
    )
    retention_max_tokens: int = Field(
        64,
        ge=1,
        description="Answer length on the retention set: forgetting shows in an answer's "
        "opening, and each side answers every prompt, so the check stays cheap.",
    )
    retention_judge: bool = Field(
        False,
        description="Also ask the pairwise judge, per side, whether its retention answers "
        "are as good as the base model's (two judge calls per prompt and side).",
    )
    retention_max_drop: float = Field(
        1.0,
        ge=0,
        le=1,
        description="The gate rejects a candidate whose retention drop (1 - Rouge-L of its "
        "answers against the base model's) is over this and over production's; 1: report "
        "only (the default until a threshold is measured across domains).",
    )
    canary_share: float = Field(
        0.0, ge=0, le=1, description="Above 0: a passing candidate goes canary, not production."
    )
    ship_prompts: bool = Field(
        False,
        description="When the decision is a prompt, ship it instead of the adapter: a new "
        "version of the data's template with the fixed arm's examples, rolled out on a "
        "canary (LORALOOP_ROLLOUT_* policy); off: the decision is reported only.",
    )
    rollout: bool = Field(
        False, description="A passing candidate starts a rollout (LORALOOP_ROLLOUT_* policy)."
    )

    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI, e.g. sqlite:///data/mlflow.db; unset: no MLflow."
    )

    @field_validator("retention_set", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value in ("", "none", "off") else value

    @field_validator("search")
    @classmethod
    def _known_search_keys(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        unknown = value.keys() - SEARCHABLE
        if unknown:
            raise ValueError(f"search over {sorted(unknown)}: only {sorted(SEARCHABLE)}")
        if any(not values for values in value.values()):
            raise ValueError("every searched setting needs at least one value")
        return value


SEARCHABLE = {"learning_rate", "lora_r", "lora_alpha", "lora_dropout"}
