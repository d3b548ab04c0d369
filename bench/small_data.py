"""Held-out Rouge-L gain of the trainer's defaults on small and full data, two domains.

For each scenario (the bundled support desk and the city-services domain), the adapter is
trained on 70 examples and on every non-held-out example, once with today's defaults
(validation split, early stopping, minimum steps) and once with the previous defaults
(two epochs, last step), all in one run. Each adapter answers the held-out questions
(product/topic pairs never trained on) through the real vLLM engine, greedy; the gain is
its Rouge-L minus the base model's. Printed: the gains, and 70-example gain / full gain.

    .venv/bin/python bench/small_data.py [--small 70] [--scenarios support_desk city_services]
"""

import argparse
import json
import random
import re
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import platform
from retrain.dataset import Example
from retrain.evaluate import Evaluator
from retrain.metrics import lcs_length, score
from retrain.settings import RetrainSettings
from retrain.train import Trainer
from serve.settings import ModelSettings

SCENARIOS = Path(__file__).resolve().parent.parent / "retrain" / "scenarios"
PREVIOUS = {"max_epochs": 2, "min_steps": 0, "validation_fraction": 0}  # before issue 11


def load(name: str) -> tuple[list[Example], list[Example]]:
    rows = [json.loads(line) for line in (SCENARIOS / f"{name}.jsonl").read_text().splitlines()]
    examples = [
        (Example(f"{name}:{i}", tuple(r["messages"]), "seed", r.get("template")), r["heldout"])
        for i, r in enumerate(rows)
    ]
    return [e for e, held in examples if not held], [e for e, held in examples if held]


ASCII_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")  # before issue 20


def ascii_rouge_l(prediction: str, reference: str) -> float:
    """Rouge-L as scored before issue 20 (ASCII punctuation only; two empties 1.0), to
    re-state earlier figures on the same answers."""

    def words(text: str) -> list[str]:
        text = ASCII_PUNCTUATION.sub(" ", text.lower())
        return [t for t in text.split() if t not in {"a", "an", "the"}]

    pred, ref = words(prediction), words(reference)
    common = lcs_length(pred, ref)
    if common == 0:
        return float(not pred and not ref)
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


LAST_ASCII: dict[str, float] = {}  # model -> the previous scoring of its last answers


def heldout_rouge(evaluator: Evaluator, model: str, held: list[Example]) -> float:
    answers = evaluator.answers(model, held)
    references = [ex.answer for ex in held]
    LAST_ASCII[model] = sum(map(ascii_rouge_l, answers, references)) / len(held)
    return score(answers, references, ["rouge_l"])["rouge_l"]


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
    return {
        "steps": result.steps,
        "best_step": result.best_step,
        "stop": result.stop_reason,
        "seconds": round(seconds, 1),
        "rouge_l": rouge,
        "validation": result.validation,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=70)
    parser.add_argument("--scenarios", nargs="+", default=["support_desk", "city_services"])
    parser.add_argument("--configs", nargs="+", default=["defaults", "previous"])
    parser.add_argument("--sizes", nargs="+", default=["small", "full"])
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    model_dir = ModelSettings().model_dir()
    configs = {"defaults": {}, "previous": PREVIOUS}
    rows: list[dict[str, Any]] = []
    with platform() as running, tempfile.TemporaryDirectory() as tmp:
        evaluator = Evaluator(
            running.engine, max_tokens=64, concurrency=16, api_key=running.engine_key
        )
        for scenario in args.scenarios:
            train, held = load(scenario)
            small = random.Random(0).sample(train, args.small)
            base = heldout_rouge(evaluator, running.model, held)
            print(
                f"{scenario}: base model Rouge-L {base:.3f} (previous scoring "
                f"{LAST_ASCII[running.model]:.3f}) on {len(held)} held-out questions"
            )
            sizes = {"small": small, "full": train}
            for data_name, data in ((n, sizes[n]) for n in args.sizes):
                for config in args.configs:
                    name = f"{scenario}-{data_name}-{config}"
                    row = train_and_score(
                        model_dir, evaluator, name, data, held, configs[config], Path(tmp)
                    )
                    row |= {
                        "scenario": scenario,
                        "data": f"{data_name} ({len(data)})",
                        "config": config,
                        "base": base,
                        "gain": row["rouge_l"] - base,
                        "rouge_l_previous_scoring": LAST_ASCII[name],
                        "base_previous_scoring": LAST_ASCII[running.model],
                    }
                    rows.append(row)
                    print(
                        f"  {row['data']:>12} {config:>8}: Rouge-L {row['rouge_l']:.3f} "
                        f"(gain {row['gain']:+.3f}; previous scoring "
                        f"{row['rouge_l_previous_scoring']:.3f}), {row['steps']} steps, best "
                        f"{row['best_step']}, {row['seconds']} s — {row['stop']}",
                        flush=True,
                    )
    print("\n| scenario | config | gain, 70 examples | gain, full | 70 / full |")
    print("| --- | --- | --- | --- | --- |")
    for scenario in args.scenarios:
        for config in args.configs:
            got = {
                r["data"].split()[0]: r["gain"]
                for r in rows
                if r["scenario"] == scenario and r["config"] == config
            }
            if len(got) < 2:
                continue
            ratio = got["small"] / got["full"] if got["full"] > 0 else float("nan")
            print(
                f"| {scenario} | {config} | {got['small']:+.3f} | {got['full']:+.3f} "
                f"| {ratio:.2f} |"
            )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
