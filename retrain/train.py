"""LoRA / QLoRA training of an adapter on chat examples, loss on the assistant's tokens only.

How long it trains follows the data (retrain/schedule.py): a validation split of the
examples is scored every few steps, training stops early when it stops improving, and the
best measured weights become the adapter.

On CUDA the base model is always loaded in 4-bit (NF4, double quantisation, bf16 compute):
QLoRA. On a CPU, 4-bit works but is about ten times slower than float32 LoRA (measured,
DESIGN.md), so `quantize=auto` trains float32 LoRA there and says so loudly. Checkpoints
(adapter, optimizer, step, data order) let an interrupted run resume; a run is deterministic
for its seed.
"""

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import (
    LoraConfig,
    PeftModel,
    get_peft_model,
    get_peft_model_state_dict,
    prepare_model_for_kbit_training,
    set_peft_model_state_dict,
)
from transformers import AutoModelForCausalLM

from retrain.dataset import Example
from retrain.schedule import (
    EarlyStopping,
    Plan,
    learning_rate_at,
    make_plan,
    split_validation,
)
from retrain.settings import RetrainSettings
from serve.chat_template import load_tokenizer

log = logging.getLogger(__name__)
Progress = Callable[[int, int, float], None]  # step, total steps, loss
IGNORE = -100
Row = tuple[list[int], list[int]]


@dataclass
class TrainResult:
    adapter_dir: Path
    steps: int
    tokens: int
    seconds: float
    losses: list[float]
    quantized: bool
    device: str
    peak_memory_bytes: int
    resumed_from: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    plan: Plan | None = None
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    best_step: int = 0
    stop_rule: str = ""  # retrain.schedule.RULES
    stop_reason: str = ""
    preference: dict[str, Any] = field(default_factory=dict)  # DPO/KTO runs: their metrics

    @property
    def best_validation_loss(self) -> float | None:
        losses = [loss for step, loss in self.validation if step == self.best_step]
        return losses[0] if losses else None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def use_4bit(settings: RetrainSettings, device: str) -> bool:
    if settings.quantize == "auto":
        if device == "cpu":
            log.warning(
                "training float32 LoRA on CPU (4-bit QLoRA is ~10x slower here); "
                "LORALOOP_RETRAIN_QUANTIZE=4bit forces QLoRA"
            )
        return device == "cuda"
    return settings.quantize == "4bit"


def load_base(model_dir: Path, four_bit: bool, device: str) -> Any:
    if four_bit:
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if device == "cuda" else torch.float32
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, quantization_config=quant, device_map={"": device}, dtype=compute
        )
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)


def encode(example: Example, tokenizer: Any, max_len: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels; labels are IGNORE everywhere but the assistant's answer."""
    tools = list(example.tools) or None
    prompt = tokenizer.apply_chat_template(
        example.prompt, tools=tools, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(list(example.messages), tools=tools, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids or len(prompt_ids) >= max_len:
        return None
    ids = full_ids[:max_len]
    labels = [IGNORE] * len(prompt_ids) + ids[len(prompt_ids) :]
    return ids, labels


def answer_key(example: Example) -> str:
    """The answer, case and spacing aside: examples with the same one validate together."""
    return " ".join(example.answer.lower().split())


def answer_count(labels: list[int]) -> int:
    """The tokens a row's loss is taken over: labelled ones after the first (the shift)."""
    return sum(1 for label in labels[1:] if label != IGNORE)


def micro_batches(rows: list[Row], max_tokens: int) -> list[list[Row]]:
    """Consecutive parts of a batch whose padded size (rows x longest row) stays within
    `max_tokens`; a row longer than that is a part of its own."""
    parts: list[list[Row]] = []
    for row in rows:
        part = parts[-1] if parts else None
        if (
            part is not None
            and (len(part) + 1) * max(len(r[0]) for r in [*part, row]) <= max_tokens
        ):
            part.append(row)
        else:
            parts.append([row])
    return parts


def collate(rows: list[Row], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        labels[i, : len(row_labels)] = torch.tensor(row_labels)
        mask[i, : len(row_ids)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class Trainer:
    def __init__(self, model_dir: Path, settings: RetrainSettings, run_dir: Path) -> None:
        self.model_dir = model_dir
        self.settings = settings
        self.run_dir = run_dir
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def tokenizer(self) -> Any:
        """The tokenizer with the chat template conversations are served with."""
        return load_tokenizer(self.model_dir, self.settings.chat_template or "auto")

    def lora_config(self) -> LoraConfig:
        s = self.settings
        return LoraConfig(
            r=s.lora_r,
            lora_alpha=s.lora_alpha,
            lora_dropout=s.lora_dropout,
            target_modules=list(s.target_modules),
            task_type="CAUSAL_LM",
            bias="none",
        )

    def train(self, examples: list[Example], progress: Progress | None = None) -> TrainResult:
        s = self.settings
        _seed(s.seed)
        tokenizer = self.tokenizer()
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        encoded = [(ex, r) for ex in examples if (r := encode(ex, tokenizer, s.max_seq_len))]
        if not encoded:
            raise ValueError("no example fits max_seq_len with room for an answer")
        keyed = [(ex.id, r) for ex, r in encoded]
        groups = [answer_key(ex) for ex, _ in encoded] if s.validation_by == "answer" else None
        rows, held = split_validation(keyed, s, groups)
        plan = make_plan(len(rows), len(held), s)
        four_bit = use_4bit(s, self.device)
        base = load_base(self.model_dir, four_bit, self.device)
        checkpoint = self.run_dir / "checkpoint"
        resuming = (checkpoint / "state.json").is_file()
        if resuming:
            model = PeftModel.from_pretrained(base, checkpoint / "adapter", is_trainable=True)
        else:
            model = get_peft_model(base, self.lora_config())
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=0.0)
        stopping = EarlyStopping(plan)
        state: dict[str, Any] = {"step": 0, "losses": [], "tokens": 0, "seconds": 0.0}
        best: dict[str, torch.Tensor] | None = None
        if resuming:
            state = json.loads((checkpoint / "state.json").read_text())
            # weights_only: a checkpoint is data; unpickling arbitrary objects would run code
            optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
            stopping.restore(state.get("early_stopping", {}))
            if (checkpoint / "best.pt").is_file():
                best = torch.load(checkpoint / "best.pt", weights_only=True)
            log.info("resuming from step %d", state["step"])
        resumed = int(state["step"])
        order = _order(len(rows), plan.max_steps * s.batch_size, s.seed)
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        model.train()
        state["seconds"] = float(state.get("seconds", 0.0))  # checkpoints before issue 21
        began = time.perf_counter() - state["seconds"]
        step = resumed
        stopped = resumed > 0 and stopping.should_stop(resumed, state["seconds"])
        while step < plan.max_steps and not stopped:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, plan, plan.learning_rate) * stopping.lr_scale()
            batch_rows = [rows[i] for i in order[step * s.batch_size : (step + 1) * s.batch_size]]
            loss = self._backward(model, batch_rows, pad)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["step"] = step
            state["losses"].append(round(loss, 6))
            state["tokens"] += sum(len(ids) for ids, _ in batch_rows)
            if stopping.due(step) and stopping.record(step, self.validation_loss(model, held, pad)):
                best = _lora_weights(model)
            state["seconds"] = time.perf_counter() - began
            if stopping.drop_due(step):
                stopping.drop(step)
                if best is not None:
                    set_peft_model_state_dict(model, best)
                log.info(
                    "plateau at step %d: rate x%g from the best weights", step, stopping.lr_scale()
                )
            stopped = stopping.should_stop(step, state["seconds"])
            if progress:
                progress(step, plan.max_steps, state["losses"][-1])
            if step % s.checkpoint_every == 0 and step < plan.max_steps and not stopped:
                state["early_stopping"] = stopping.state()
                self._checkpoint(model, optimizer, state, best)
        elapsed = state["seconds"]
        rule = stopping.rule(step, elapsed)
        measured = bool(stopping.curve) and stopping.curve[-1][0] == step
        # a budget may end a run between measurements: the last steps count too
        last = bool(held) and plan.eval_every > 0 and not measured and not stopping.diverged
        if last and stopping.record(step, self.validation_loss(model, held, pad)):
            best = _lora_weights(model)
        seconds = time.perf_counter() - began
        if best is not None:
            set_peft_model_state_dict(model, best)
        adapter = self.run_dir / "adapter"
        model.save_pretrained(adapter)
        tokenizer.save_pretrained(adapter)
        return TrainResult(
            adapter_dir=adapter,
            steps=step,
            tokens=int(state["tokens"]),
            seconds=seconds,
            losses=list(state["losses"]),
            quantized=four_bit,
            device=self.device,
            peak_memory_bytes=peak_memory(self.device),
            resumed_from=resumed,
            config={**s.model_dump(mode="json"), "examples": len(keyed), "steps": step},
            plan=plan,
            validation=list(stopping.curve),
            best_step=stopping.best_step if best is not None else step,
            stop_rule=rule,
            stop_reason=stopping.reason(step, elapsed, rule),
        )

    def _backward(self, model: Any, rows: list[Row], pad: int) -> float:
        """One step's gradients and its loss, the mean over the step's answer tokens. A
        batch within `micro_batch_tokens` is one forward pass; a longer one is split and
        each part's summed loss, over the whole batch's answer tokens, is backpropagated."""
        parts = micro_batches(rows, self.settings.micro_batch_tokens)
        if len(parts) == 1:
            batch = {k: v.to(self.device) for k, v in collate(rows, pad).items()}
            loss = model(**batch).loss
            loss.backward()
            return float(loss.item())
        answer_tokens = sum(answer_count(labels) for _, labels in rows)
        total = 0.0
        for part in parts:
            summed = self._summed_loss(model, part, pad)
            (summed / max(1, answer_tokens)).backward()
            total += float(summed.item())
        return total / max(1, answer_tokens)

    def _summed_loss(self, model: Any, rows: list[Row], pad: int) -> torch.Tensor:
        batch = {k: v.to(self.device) for k, v in collate(rows, pad).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        shifted = logits.logits[:, :-1].float()
        labels = batch["labels"][:, 1:]
        return torch.nn.functional.cross_entropy(
            shifted.reshape(-1, shifted.size(-1)),
            labels.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )

    @torch.no_grad()
    def validation_loss(self, model: Any, held: list[Row], pad: int) -> float:
        """Mean loss per answer token over the validation split (dropout off)."""
        model.eval()
        total, count = 0.0, 0
        for start in range(0, len(held), self.settings.batch_size):
            batch = held[start : start + self.settings.batch_size]
            for part in micro_batches(batch, self.settings.micro_batch_tokens):
                total += float(self._summed_loss(model, part, pad))
            count += sum(answer_count(labels) for _, labels in batch)
        model.train()
        return total / max(1, count)

    def _checkpoint(
        self,
        model: Any,
        optimizer: Any,
        state: dict[str, Any],
        best: dict[str, torch.Tensor] | None,
    ) -> None:
        checkpoint = self.run_dir / "checkpoint"
        model.save_pretrained(checkpoint / "adapter")
        torch.save(optimizer.state_dict(), checkpoint / "optimizer.pt")
        if best is not None:
            torch.save(best, checkpoint / "best.pt")
        (checkpoint / "state.json").write_text(json.dumps(state))


def _lora_weights(model: Any) -> dict[str, torch.Tensor]:
    """A copy of the adapter's weights (small: the LoRA matrices only)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(model).items()}


def _order(n: int, length: int, seed: int) -> list[int]:
    """Example indices for every step: epoch after epoch, each shuffled by the seed."""
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < length:
        epoch = list(range(n))
        rng.shuffle(epoch)
        order += epoch
    return order


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def peak_memory(device: str) -> int:
    """Peak accelerator memory on CUDA; the process's resident memory on a CPU."""
    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    import psutil

    return int(psutil.Process().memory_info().rss)
