"""Held-out Rouge-L gain of the trainer's defaults at 20, 70 and all examples, three domains.

For each scenario (the bundled support desk, city services and IT helpdesk: three answer
styles), the adapter is trained on a seeded sample of 20 and 70 examples and on every
non-held-out example, once with today's defaults (train until the validation loss plateaus,
warm-up) and once with issue 11's (at least 120 steps, at most 8 epochs, validation every
epoch, patience 3, no tolerance), all in one run. Each adapter answers the held-out questions
(product/topic pairs never trained on) through the real vLLM engine, greedy; the gain is
its Rouge-L minus the base model's. Printed per run: the gain, steps, where the best step
fell, which rule ended training and the training time; then one table.

    .venv/bin/python bench/small_data.py [--sizes 20 70 full] [--scenarios ...]
        [--configs defaults constant issue11] [--set learning_rate=1e-3] [--seeds 0 1 2]
        [--runs scenario:size:config[:seed] ...] [--out rows.json]
"""

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import parse_overrides, platform, run_record
from retrain.dataset import Example
from retrain.evaluate import Evaluator
from retrain.metrics import score
from retrain.schedule import validation_size
from retrain.settings import RetrainSettings
from retrain.train import Trainer
from serve.settings import ModelSettings

SCENARIOS = Path(__file__).resolve().parent.parent / "retrain" / "scenarios"
DOMAINS = ["support_desk", "city_services", "it_helpdesk"]
# named variants of today's defaults: "constant" never cuts the rate at a plateau, "lowest"
# keeps the lowest reading's weights (before issue 21's keep tolerance)
VARIANTS: dict[str, dict[str, Any]] = {
    "constant": {"lr_drops": 0},
    "lowest": {"keep_tolerance": 0.0},
}


def variant(config: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Today's defaults (with `--set`), as the named variant changes them."""
    return overrides | VARIANTS.get(config, {})


def issue11(examples: int) -> dict[str, Any]:
    """Issue 11's defaults, reproduced exactly: at least 120 steps and at most 8 epochs of
    them (3,000 at most), validation once per epoch (5 to 200 steps), patience 3 with no
    tolerance or smoothing, a constant learning rate of 2e-4, validation examples drawn one by
    one (not grouped by answer), the lowest reading's weights kept."""
    defaults = RetrainSettings()
    train = examples - validation_size(examples, defaults)
    per_epoch = math.ceil(train / defaults.batch_size)
    return {
        "max_steps": min(3000, max(per_epoch * 8, 120)),
        "max_epochs": 10_000,  # the step count above is the whole budget
        "max_minutes": 0,
        "min_steps": 120,
        "eval_every": min(200, max(5, per_epoch)),
        "patience": 3,
        "min_improvement": 0,
        "smoothing": 1,
        "warmup_steps": 0,
        "learning_rate": 2e-4,
        "learning_rate_examples": 0,
        "validation_by": "example",
        "keep_tolerance": 0.0,
    }


def load(name: str) -> tuple[list[Example], list[Example]]:
    rows = [json.loads(line) for line in (SCENARIOS / f"{name}.jsonl").read_text().splitlines()]
    examples = [
        (Example(f"{name}:{i}", tuple(r["messages"]), "seed", r.get("template")), r["heldout"])
        for i, r in enumerate(rows)
    ]
    return [e for e, held in examples if not held], [e for e, held in examples if held]


def heldout_rouge(evaluator: Evaluator, model: str, held: list[Example]) -> float:
    answers = evaluator.answers(model, held)
    return score(answers, [ex.answer for ex in held], ["rouge_l"])["rouge_l"]


def train_and_score(
    model_dir: Path,
    evaluator: Evaluator,
    name: str,
    data: list[Example],
    held: list[Example],
    overrides: dict[str, Any],
    work: Path,
) -> dict[str, Any]:
    settings = RetrainSettings(**overrides)
    began = time.perf_counter()
    result = Trainer(model_dir, settings, work / name).train(data)
    seconds = time.perf_counter() - began
    evaluator.load(name, result.adapter_dir)
    try:
        rouge = heldout_rouge(evaluator, name, held)
    finally:
        evaluator.unload(name)
    return run_record(result) | {"seconds": round(seconds, 1), "rouge_l": rouge}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", nargs="+", default=DOMAINS)
    parser.add_argument("--configs", nargs="+", default=["defaults", "issue11"])
    parser.add_argument("--sizes", nargs="+", default=["20", "70", "full"])
    parser.add_argument("--set", nargs="*", default=[], help="defaults' overrides, key=json")
    parser.add_argument(
        "--learning-rates", nargs="*", type=float, default=[], help="defaults at each rate"
    )
    parser.add_argument(
        "--runs", nargs="*", default=[], help="only these, as scenario:size:config[:seed]"
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="training seeds (LoRA init, data order, validation split)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    model_dir = ModelSettings().model_dir()
    overrides = parse_overrides(args.set)
    configs: dict[str, dict[str, Any]] = {}  # today's defaults by name; issue11 is built per size
    for config in args.configs:
        if config == "defaults" and args.learning_rates:
            for rate in args.learning_rates:
                configs[f"lr {rate:g}"] = overrides | {"learning_rate": rate}
        elif config != "issue11":
            configs[config] = variant(config, overrides)
    rows: list[dict[str, Any]] = []
    with platform() as running, tempfile.TemporaryDirectory() as tmp:
        evaluator = Evaluator(
            running.engine, max_tokens=64, concurrency=16, api_key=running.engine_key
        )
        plan = [(*run.split(":"), "0")[:4] for run in args.runs] or [
            (scenario, size, config, str(seed))
            for scenario in args.scenarios
            for size in args.sizes
            for config in [*configs, *(["issue11"] if "issue11" in args.configs else [])]
            for seed in args.seeds
        ]
        bases: dict[str, float] = {}
        for scenario, size, config, seed in plan:
            train, held = load(scenario)
            if scenario not in bases:
                bases[scenario] = heldout_rouge(evaluator, running.model, held)
                print(f"{scenario}: base model Rouge-L {bases[scenario]:.3f}, {len(held)} held out")
            base = bases[scenario]
            n = len(train) if size == "full" else int(size)
            data = random.Random(0).sample(train, n) if n < len(train) else train
            name = f"{scenario}-{size}-{config.replace(' ', '')}-seed{seed}"
            settings = (
                issue11(len(data))
                if config == "issue11"
                else configs.get(config, variant(config, overrides))
            )
            settings = settings | {"seed": int(seed)}  # the training seed; the sample stays
            row = train_and_score(model_dir, evaluator, name, data, held, settings, Path(tmp))
            row |= {
                "scenario": scenario,
                "examples": len(data),
                "config": config,
                "seed": int(seed),
                "overrides": settings,
                "base": base,
                "gain": row["rouge_l"] - base,
            }
            rows.append(row)
            print(
                f"  {len(data):>4} examples {config:>10} seed {seed}: Rouge-L {row['rouge_l']:.3f} "
                f"(gain {row['gain']:+.3f}), {row['steps']} steps, best "
                f"{row['best_step']}, {row['seconds']} s — {row['stop']}",
                flush=True,
            )
            if args.out:
                args.out.write_text(json.dumps(rows, indent=2))
    print("\n| scenario | examples | config | gain | steps | best at | ended by | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['examples']} | {r['config']} | {r['gain']:+.3f} "
            f"| {r['steps']} | {r['best_step']} | {r['rule']} | {r['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
