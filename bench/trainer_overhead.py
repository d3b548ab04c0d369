"""The trainer against a bare peft training loop: same model, data, LoRA settings, batches
and optimizer, one process. The ratio (trainer tokens/s / bare tokens/s) is the trainer's
overhead (checkpointing, progress, bookkeeping); the target is >= 0.95.

    .venv/bin/python bench/trainer_overhead.py [--examples 128] [--rounds 4]

Rounds alternate which runs first, so that warm-up and machine noise fall on both; the
median ratio is reported.
"""

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from retrain.dataset import Example
from retrain.settings import RetrainSettings
from retrain.train import Trainer, _order, collate, encode
from serve.settings import ModelSettings

SCENARIO = Path(__file__).resolve().parent.parent / "retrain" / "scenarios" / "support_desk.jsonl"


def scenario(n: int) -> list[Example]:
    rows = [json.loads(line) for line in SCENARIO.read_text().splitlines()][:n]
    return [
        Example(f"s{i}", tuple(r["messages"]), "seed", r["template"]) for i, r in enumerate(rows)
    ]


def bare(model_dir: Path, settings: RetrainSettings, examples: list[Example]) -> float:
    """The textbook loop: peft model, AdamW, forward/backward/step; tokens per second."""
    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [r for r in (encode(ex, tokenizer, settings.max_seq_len) for ex in examples) if r]
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, Trainer(model_dir, settings, Path()).lora_config())
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    steps = math.ceil(len(rows) / settings.batch_size * settings.max_epochs)
    order = _order(len(rows), steps * settings.batch_size, settings.seed)
    pad = tokenizer.pad_token_id or 0
    model.train()
    tokens, began = 0, time.perf_counter()
    for step in range(steps):
        batch = collate(
            [rows[i] for i in order[step * settings.batch_size :][: settings.batch_size]], pad
        )
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    model_dir = ModelSettings().model_dir()
    settings = RetrainSettings(
        max_epochs=1,
        min_steps=0,
        validation_fraction=0,
        batch_size=8,
        learning_rate=1e-3,
        quantize="none",
    )
    examples = scenario(args.examples)
    ratios = []
    for round_ in range(args.rounds):
        # Alternate which goes first: the first model load of a round warms caches.
        order = ("bare", "trainer") if round_ % 2 == 0 else ("trainer", "bare")
        speed = {}
        for which in order:
            if which == "bare":
                speed[which] = bare(model_dir, settings, examples)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    speed[which] = (
                        Trainer(model_dir, settings, Path(tmp)).train(examples).tokens_per_s
                    )
        ratios.append(speed["trainer"] / speed["bare"])
        print(
            f"round {round_ + 1} ({order[0]} first): bare peft {speed['bare']:7.1f} tokens/s, "
            f"trainer {speed['trainer']:7.1f} tokens/s, ratio {ratios[-1]:.3f}"
        )
    print(f"trainer / bare peft tokens/s, median of {len(ratios)}: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
