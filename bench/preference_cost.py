"""What a preference step costs against an SFT step: time and peak memory per example (issue 22).

The same prompts train each objective for the same fixed number of optimiser steps at the
same batch size: SFT on the good answers, DPO on (good, flawed) pairs, KTO on the good and
the flawed answers labelled desirable and undesirable. Each objective runs in a fresh process
so that its peak memory is its own (the resident set's high-water mark on a CPU, torch's
max allocated on CUDA); SFT runs first and last, and the ratios are against the mean of the
two, which cancels part of this machine's drift.

    .venv/bin/python bench/preference_cost.py [--steps 12] [--rows 64] [--scenario support_desk]

A DPO row is two sequences (chosen and rejected) through the policy and two through the
reference; a KTO row is one completion plus a mismatched one for its KL estimate, each
through both. With the reference being the base with the adapter disabled, no second copy
of the weights is loaded, so memory should grow with activations only.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from loraloop.flaws import good_answer, load_flawed
from retrain.dataset import Example
from retrain.preference_data import JudgedAnswer, Preference, PreferencePair
from retrain.preference_train import PreferenceTrainer
from retrain.settings import RetrainSettings
from retrain.train import Trainer
from serve.settings import ModelSettings


def preferences(objective: str, data: list[dict[str, Any]]) -> list[Preference]:
    """DPO: each prompt's (good, flawed) pair; KTO: every other answer good, the rest flawed."""
    if objective == "dpo":
        return [
            PreferencePair(f"p{i}", tuple(r["messages"][:-1]), good_answer(r), r["flawed"], "bench")
            for i, r in enumerate(data)
        ]
    return [
        JudgedAnswer(
            f"k{i}",
            tuple(r["messages"][:-1]),
            good_answer(r) if i % 2 == 0 else r["flawed"],
            i % 2 == 0,
            "bench",
        )
        for i, r in enumerate(data)
    ]


def one(objective: str, scenario: str, rows: int, steps: int) -> dict[str, Any]:
    """Train `objective` for `steps` fixed steps in this process; its cost."""
    data = [r for r in load_flawed(scenario) if not r["heldout"]][:rows]
    settings = RetrainSettings(validation_fraction=0, fixed_steps=steps, warmup_steps=0)
    model_dir = ModelSettings().model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        if objective == "sft":
            examples = [Example(f"s{i}", tuple(r["messages"]), "seed") for i, r in enumerate(data)]
            result = Trainer(model_dir, settings, Path(tmp)).train(examples)
        else:
            items = preferences(objective, data)
            trainer = PreferenceTrainer(model_dir, settings, Path(tmp))
            result = trainer.train_preferences("dpo" if objective == "dpo" else "kto", items)
    if result.device == "cuda":
        peak = int(torch.cuda.max_memory_allocated())
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seen = result.steps * settings.batch_size
    return {
        "objective": objective,
        "device": result.device,
        "quantized": result.quantized,
        "steps": result.steps,
        "seconds": result.seconds,
        "seconds_per_example": result.seconds / max(1, seen),
        "peak_bytes": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--scenario", default="support_desk")
    parser.add_argument("--one", choices=["sft", "dpo", "kto"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.scenario, args.rows, args.steps)))
        return
    results = []
    for objective in ("sft", "dpo", "kto", "sft"):
        command = [sys.executable, __file__, "--one", objective]
        command += ["--steps", str(args.steps), "--rows", str(args.rows)]
        command += ["--scenario", args.scenario]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{objective}: {r['steps']} steps, {r['seconds_per_example']:.3f} s/example, "
              f"peak {r['peak_bytes'] / 2**20:.0f} MiB", flush=True)  # fmt: skip
    sft = [r for r in results if r["objective"] == "sft"]
    time_ref = sum(r["seconds_per_example"] for r in sft) / len(sft)
    memory_ref = sum(r["peak_bytes"] for r in sft) / len(sft)
    device = results[0]["device"] + (" 4-bit" if results[0]["quantized"] else "")
    print(f"\n{args.scenario}, {args.rows} rows, {args.steps} steps, {device}")
    print("| objective | s/example | time vs SFT | peak MiB | memory vs SFT |")
    print("| --- | --- | --- | --- | --- |")
    for r in results[1:3]:
        print(f"| {r['objective']} | {r['seconds_per_example']:.3f} | "
              f"{r['seconds_per_example'] / time_ref:.2f}x | {r['peak_bytes'] / 2**20:.0f} | "
              f"{r['peak_bytes'] / memory_ref:.2f}x |")  # fmt: skip
    print(f"| sft (mean of first and last) | {time_ref:.3f} | 1.00x | {memory_ref / 2**20:.0f} "
          f"| 1.00x |")  # fmt: skip


if __name__ == "__main__":
    main()
