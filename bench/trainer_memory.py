"""Peak memory and speed of the trainer, 4-bit QLoRA against float32 LoRA, same data, one run.

    .venv/bin/python bench/trainer_memory.py [--model DIR] [--random-weights]

On CUDA, peak memory is torch's max allocated; on CPU, the process's resident set. With
`--random-weights` the model is built from DIR's config with random weights (for machines
the weights cannot be copied to: the architecture, not the numbers, decides the memory).
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from retrain.dataset import Example
from retrain.settings import RetrainSettings
from retrain.train import Trainer
from serve.settings import ModelSettings


def examples(n: int) -> list[Example]:
    return [
        Example(
            f"e{i}",
            (
                {"role": "user", "content": f"What is the code of shelf {i}?"},
                {"role": "assistant", "content": f"Shelf {i} has code ZX-{i * 7}."},
            ),
            "seed",
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--examples", type=int, default=64)
    args = parser.parse_args()
    model = args.model or ModelSettings().model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_weights:
            built = Path(tmp) / "model"
            torch.manual_seed(0)
            AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model)).save_pretrained(
                built
            )
            for f in model.iterdir():
                if f.name.startswith(("tokenizer", "chat_template", "generation")):
                    shutil.copy(f, built)
            model = built
        results = {}
        for mode in ("none", "4bit"):
            settings = RetrainSettings(
                max_epochs=4,
                min_steps=0,
                validation_fraction=0,
                batch_size=16,
                learning_rate=1e-3,
                quantize=mode,
            )
            run = Trainer(model, settings, Path(tmp) / mode).train(examples(args.examples))
            results[mode] = run
            print(
                f"{mode:>5}: {run.device} {run.tokens_per_s:8.0f} tokens/s, peak "
                f"{run.peak_memory_bytes / 2**20:8.0f} MiB, loss {run.losses[0]:.3f} -> "
                f"{run.losses[-1]:.3f}"
            )
    four, full = results["4bit"], results["none"]
    print(f"peak memory 4-bit / float32: {four.peak_memory_bytes / full.peak_memory_bytes:.3f}")
    print(f"tokens/s    4-bit / float32: {four.tokens_per_s / full.tokens_per_s:.3f}")


if __name__ == "__main__":
    main()
