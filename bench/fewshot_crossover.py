"""Fine-tune or prompt: where the adapter overtakes a few-shot prompt (issue 24).

For each scenario and training size (a seeded sample of 20 and 70 examples, and all of
them), the adapter is trained with today's defaults, then the same held-out questions
(product/topic pairs never trained on) are answered through the real vLLM engine, greedy,
by: the base model, the base with `k` fixed examples (chosen to cover the data), the base
with the `k` examples most like each question (retrieved by the drift embedder), and the
adapter. Also measured: each side's prompt tokens and seconds per request, the adapter's
retention drop on the shipped general prompts (1 - Rouge-L against the base's answers),
and the time the arms add to the run (their answering and the shot choice, as a ratio to
training plus the adapter's evaluation).

    .venv/bin/python bench/fewshot_crossover.py [--scenarios support_desk city_services]
        [--sizes 20 70 full] [--k 4] [--out rows.json]
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import platform
from bench.small_data import load
from feedback.drift.embeddings import Embedder
from retrain.compare import token_counter
from retrain.evaluate import Asked, Evaluator
from retrain.fewshot import ShotPicker, shots_from
from retrain.metrics import score
from retrain.retention import DEFAULT_SET, compare_to_base, load_retention
from retrain.settings import RetrainSettings
from retrain.train import Trainer
from serve.settings import ModelSettings

SIDES = ("base", "fixed", "retrieved", "adapter")


def rouge(asked: Asked, held: list[Any]) -> float:
    return score(asked.texts, [ex.answer for ex in held], ["rouge_l"])["rouge_l"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", nargs="+", default=["support_desk", "city_services"])
    parser.add_argument("--sizes", nargs="+", default=["20", "70", "full"])
    parser.add_argument("--k", type=int, default=RetrainSettings().fewshot_k)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = RetrainSettings()
    model_dir = ModelSettings().model_dir()
    count, embedder = token_counter(model_dir), Embedder()
    retention = load_retention(DEFAULT_SET)
    rows: list[dict[str, Any]] = []
    with platform() as running, tempfile.TemporaryDirectory() as tmp:
        evaluator = Evaluator(
            running.engine, settings.eval_max_tokens, settings.eval_concurrency,
            api_key=running.engine_key,
        )  # fmt: skip
        context = evaluator.context_length(running.model)
        base_retention = evaluator.answers(
            running.model, retention, max_tokens=settings.retention_max_tokens
        )
        for scenario in args.scenarios:
            train, held = load(scenario)
            base = evaluator.ask(running.model, held)
            for size in args.sizes:
                n = len(train) if size == "full" else int(size)
                data = random.Random(0).sample(train, n) if n < len(train) else train
                name = f"{scenario}-{size}"
                began = time.perf_counter()
                result = Trainer(model_dir, settings, Path(tmp) / name).train(data)
                trained_s = time.perf_counter() - began
                began = time.perf_counter()
                picker = ShotPicker(
                    shots_from(data, count), embedder.encode, args.k,
                    settings.fewshot_max_tokens, context, settings.eval_max_tokens, count,
                )  # fmt: skip
                fixed = evaluator.ask(running.model, picker.fixed(held))
                retrieved = evaluator.ask(running.model, picker.retrieved(held))
                arms_s = time.perf_counter() - began
                evaluator.load(name, result.adapter_dir)
                try:
                    began = time.perf_counter()
                    adapter = evaluator.ask(name, held)
                    adapter_s = time.perf_counter() - began
                    kept = evaluator.answers(
                        name, retention, max_tokens=settings.retention_max_tokens
                    )
                finally:
                    evaluator.unload(name)
                drop = compare_to_base(
                    retention, {"base": base_retention, "candidate": kept}, 1.0
                ).drop["candidate"]
                asked = dict(zip(SIDES, (base, fixed, retrieved, adapter), strict=True))
                row = {
                    "scenario": scenario,
                    "examples": len(data),
                    "rouge_l": {side: round(rouge(a, held), 4) for side, a in asked.items()},
                    "prompt_tokens": {side: a.prompt_tokens for side, a in asked.items()},
                    "seconds": {side: round(a.seconds, 4) for side, a in asked.items()},
                    "retention_drop": drop,
                    "train_s": round(trained_s, 1),
                    "arms_s": round(arms_s, 1),
                    "arms_ratio": round(arms_s / (trained_s + adapter_s), 3),
                    "trimmed_shots": picker.trimmed,
                }
                rows.append(row)
                scores = ", ".join(f"{s} {v:.3f}" for s, v in row["rouge_l"].items())
                print(f"{scenario} {len(data):>4}: {scores}; drop {drop:.3f}; arms "
                      f"{arms_s:.0f} s vs {trained_s:.0f} s training", flush=True)  # fmt: skip
                if args.out:
                    args.out.write_text(json.dumps(rows, indent=2))
    print(
        "\n| scenario | examples | base | fixed | retrieved | adapter | adapter's retention "
        "drop | prompt tokens (base / fixed / retrieved / adapter) | arms' time / run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        s, t = r["rouge_l"], r["prompt_tokens"]
        print(
            f"| {r['scenario']} | {r['examples']} | {s['base']:.3f} | {s['fixed']:.3f} "
            f"| {s['retrieved']:.3f} | {s['adapter']:.3f} | {r['retention_drop']:.3f} "
            f"| {' / '.join(f'{t[x]:.0f}' for x in SIDES)} | {r['arms_ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
