"""Preference tuning of a LoRA adapter with TRL: DPO on pairs, KTO on judged answers.

The losses are TRL's (`DPOTrainer`, `KTOTrainer`); this module gives them the project's
schedule. A validation split of the preferences is scored every few steps and training stops
on the same plateau rule as SFT (retrain/schedule.py), on the validation preference loss:
DPO's is -log sigmoid(beta x reward margin), so it falls exactly while the held-back pairs'
margins grow; the best measured weights become the adapter.

The reference model is the policy before this stage and never a second copy of the base
weights: a fresh adapter is judged against the base with the adapter disabled; an adapter
that SFT trained first (`start`) is loaded twice, as the trained "default" and the frozen
"ref" that TRL compares with.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
from datasets import Dataset
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
from transformers import PrinterCallback, TrainerCallback

from retrain.preference_data import JudgedAnswer, Preference, PreferencePair, balance
from retrain.schedule import EarlyStopping, Plan, make_plan, split_validation
from retrain.train import Progress, Trainer, TrainResult, load_base, peak_memory, use_4bit
from serve.chat_template import load_tokenizer

log = logging.getLogger(__name__)
Kind = Literal["dpo", "kto"]


class PreferenceTrainer(Trainer):
    """Trains (or goes on training) an adapter on preferences; the LoRA shape, device and
    quantisation follow the SFT trainer's."""

    def train_preferences(
        self,
        kind: Kind,
        items: list[Preference],
        start: Path | None = None,
        progress: Progress | None = None,
    ) -> TrainResult:
        from datasets import disable_progress_bars
        from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

        disable_progress_bars()  # TRL's dataset preparation: the run reports its own progress

        s = self.settings
        wanted = PreferencePair if kind == "dpo" else JudgedAnswer
        if not items or any(not isinstance(item, wanted) for item in items):
            raise ValueError(f"{kind} trains on {wanted.__name__} rows only")
        # one prompt's rows (a correction and what it corrected) validate together
        prompts = [json.dumps(item.prompt, sort_keys=True) for item in items]
        train, held = split_validation([(item.id, item) for item in items], s, prompts)
        # TRL's scheduler owns the rate: a plateau stops a preference stage, it cuts nothing
        planned = make_plan(len(train), len(held), s)
        plan = replace(planned, lr_drops=0, learning_rate=s.preference_learning_rate)
        tokenizer = load_tokenizer(self.model_dir, s.chat_template or "auto")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        four_bit = use_4bit(s, self.device)
        model: Any = load_base(self.model_dir, four_bit, self.device)
        if start is not None:
            model = PeftModel.from_pretrained(model, start, is_trainable=True)
        stopping = EarlyStopping(plan)
        watcher = _Watch(stopping, plan, progress)
        common: dict[str, Any] = {
            "output_dir": str(self.run_dir / "trl"),
            "max_steps": plan.max_steps,
            "per_device_train_batch_size": s.batch_size,
            "per_device_eval_batch_size": s.batch_size,
            "learning_rate": s.preference_learning_rate,
            "lr_scheduler_type": "constant_with_warmup",
            "warmup_steps": min(s.warmup_steps, plan.max_steps),
            "weight_decay": 0.0,
            "beta": s.preference_beta,
            "max_length": s.max_seq_len,
            "eval_strategy": "steps" if held else "no",
            "eval_steps": plan.eval_every or None,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": [],
            "disable_tqdm": True,
            "seed": s.seed,
            "data_seed": s.seed,
            "use_cpu": self.device == "cpu",
            "bf16": four_bit and self.device == "cuda",
            "dataloader_num_workers": 0,
        }
        rows = Dataset.from_list([item.row() for item in train])
        validation = Dataset.from_list([item.row() for item in held]) if held else None
        peft_config = None if start is not None else self.lora_config()
        if kind == "dpo":
            trainer: Any = DPOTrainer(
                model=model,
                args=DPOConfig(**common),
                train_dataset=rows,
                eval_dataset=validation,
                processing_class=tokenizer,
                peft_config=peft_config,
                callbacks=[watcher],
            )
        else:
            counts = balance(train)
            # TRL's advice: desirable x weight over undesirable x weight in [1, 4/3]
            weight = 1.15 * counts["undesirable"] / max(1, counts["desirable"])
            trainer = KTOTrainer(
                model=model,
                args=KTOConfig(**common, desirable_weight=weight, undesirable_weight=1.0),
                train_dataset=rows,
                eval_dataset=validation,
                processing_class=tokenizer,
                peft_config=peft_config,
                callbacks=[watcher],
            )
        trainer.remove_callback(PrinterCallback)  # progress goes to `progress`, not stdout
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        began = time.perf_counter()
        watcher.began = began
        trainer.train()
        seconds = time.perf_counter() - began
        policy = trainer.model
        if watcher.best is not None:
            set_peft_model_state_dict(policy, watcher.best, adapter_name="default")
        if "ref" in policy.peft_config:
            policy.delete_adapter("ref")
        adapter = self.run_dir / "adapter"
        policy.save_pretrained(adapter, selected_adapters=["default"])
        tokenizer.save_pretrained(adapter)
        steps = int(trainer.state.global_step)
        losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
        rule = stopping.rule(steps, seconds)
        tokens = [int(h["num_tokens"]) for h in trainer.state.log_history if "num_tokens" in h]
        return TrainResult(
            adapter_dir=adapter,
            steps=steps,
            tokens=max(tokens, default=0),
            seconds=seconds,
            losses=losses,
            quantized=four_bit,
            device=self.device,
            peak_memory_bytes=peak_memory(self.device),
            config={**s.model_dump(mode="json"), "objective": kind, "examples": len(items)},
            plan=plan,
            validation=list(stopping.curve),
            best_step=stopping.best_step if watcher.best is not None else steps,
            stop_rule=rule,
            stop_reason=stopping.reason(steps, seconds, rule),
            preference=watcher.summary(kind, stopping.best_step, len(train), len(held)),
        )


class _Watch(TrainerCallback):  # type: ignore[misc]
    """The plateau rule on TRL's evaluations; keeps the best adapter weights."""

    def __init__(self, stopping: EarlyStopping, plan: Plan, progress: Progress | None) -> None:
        self.stopping = stopping
        self.plan = plan
        self.progress = progress
        self.best: dict[str, torch.Tensor] | None = None
        self.readings: dict[int, dict[str, float]] = {}
        self.began = time.perf_counter()

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        metrics: dict[str, float] = kwargs.get("metrics") or {}
        step = int(state.global_step)
        self.readings[step] = {
            k.removeprefix("eval_"): float(v)
            for k, v in metrics.items()
            if k.startswith(("eval_rewards/", "eval_loss", "eval_kl"))
        }
        if self.stopping.record(step, float(metrics.get("eval_loss", float("nan")))):
            model = kwargs["model"]
            self.best = {
                k: v.detach().to("cpu", copy=True)
                for k, v in get_peft_model_state_dict(model, adapter_name="default").items()
            }
        if self.stopping.should_stop(step, time.perf_counter() - self.began):
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        logs = kwargs.get("logs") or {}
        if self.progress and "loss" in logs:
            self.progress(int(state.global_step), self.plan.max_steps, float(logs["loss"]))

    def summary(self, kind: str, best_step: int, train: int, held: int) -> dict[str, Any]:
        """The objective and the validation preference metrics at the kept step."""
        at_best = self.readings.get(best_step, {})
        return {
            "objective": kind,
            "train_rows": train,
            "validation_rows": held,
            "validation_at_best": at_best,
            "validation_curve": [
                {"step": step, **values} for step, values in sorted(self.readings.items())
            ],
        }
