"""Does learning from thumbs and preferences remove a flaw that corrections alone do not?
(issue 22)

For each preference scenario (`scripts/make_flawed.py`: the support desk with a curt
brush-off, city services without its reference code):

1. a flawed production adapter is trained on the scenario with `--flawed-share` of the
   answers flawed, registered and promoted through the gateway's admin API;
2. every non-held-out question is asked through the gateway (real capture, greedy);
3. simulated end users rate each answer: thumbs down when the flaw is there, up when not,
   with `--flip` of the ratings flipped (label noise); a simulated reviewer corrects
   `--corrections` flawed answers with the good one through the review API;
4. each objective trains on what was captured, the way a run would read it (the exports),
   and answers the held-out questions through the real engine (greedy): the flaw rate and
   Rouge-L against the good answers are printed against production's, one table.
   `seed+sft`, `seed+sft+kto`: SFT also reads production's own training data, flawed
   answers included, as a run given it as a seed file does.

    .venv/bin/python bench/preferences.py [--scenarios support_desk city_services]
        [--objectives sft dpo kto sft+kto] [--flip 0.12] [--corrections 20] [--questions 120]
        [--set key=json ...] [--variants label:key=json[,key=json] ...] [--out rows.json]

`--set` changes every stage's settings; `--variants` names other settings of the preference
stage, and an objective written `objective[label]` trains with that variant's (the SFT stage
it starts from is shared): `--objectives seed+sft+kto 'seed+sft+kto[beta0.5]' --variants
beta0.5:preference_beta=0.5`. The rows written by `--out` carry each stage's run record
(steps, best step, what ended it, the validation curve) and the held-out answers.
"""

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import parse_overrides, platform, run_record
from feedback.signals import Thresholds
from loraloop.db import create_db_engine
from loraloop.demo_preferences import promote_by_hand
from loraloop.flaws import flaw_rate, good_answer, habits, judge, load_flawed
from retrain.dataset import Example, from_feedback
from retrain.evaluate import Evaluator, chat_many
from retrain.metrics import score
from retrain.preference_data import judged_from_feedback, pairs_from_feedback
from retrain.preference_train import PreferenceTrainer
from retrain.settings import RetrainSettings
from retrain.train import Trainer
from serve.settings import ModelSettings


def production(model_dir: Path, rows: list[dict[str, Any]], share: float, work: Path) -> Path:
    """SFT on the scenario with `share` of the answers flawed: production's habits, learned
    in a fixed three passes (its quality is the starting point, not what is measured)."""
    steps = 3 * math.ceil(len(rows) / RetrainSettings().batch_size)
    settings = RetrainSettings(validation_fraction=0, fixed_steps=steps)
    return Trainer(model_dir, settings, work / "production").train(habits(rows, share)).adapter_dir


def serve(client: httpx.Client, store: Path, alias: str, adapter: Path) -> None:
    shutil.copytree(adapter, store / alias)
    promote_by_hand(client, alias, store / alias)


def traffic(url: str, alias: str, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(interaction id, answer) for every question, asked through the gateway (greedy)."""
    bodies = chat_many(url, alias, [r["messages"][:1] for r in rows], 64, 16)
    return [(b["interaction_id"], b["choices"][0]["message"]["content"] or "") for b in bodies]


def measure(evaluator: Evaluator, model: str, held: list[dict[str, Any]]) -> dict[str, Any]:
    """Flaw rate and Rouge-L on the held-out questions, with the answers (to read why)."""
    items = [Example(f"h{i}", tuple(r["messages"]), "seed") for i, r in enumerate(held)]
    answers = evaluator.answers(model, items)
    rouge = score(answers, [good_answer(r) for r in held], ["rouge_l"])["rouge_l"]
    return {"flaw_rate": flaw_rate(answers, held), "rouge_l": rouge, "answers": answers}


def train(
    objective: str,
    model_dir: Path,
    db_url: str,
    alias: str,
    work: Path,
    seed: list[Example],
    stages: dict[str, tuple[Path, float, dict[str, Any]]],
    settings: RetrainSettings,
    stage_settings: RetrainSettings,
) -> tuple[Path, float, dict[str, Any]]:
    """One objective on what was captured, read through the exports a run reads; a `seed+`
    objective's SFT also reads production's own training data (`seed`), as a run given it
    as a seed file would: the flaw is then in what SFT learns, not only in what users saw.

    `stages` holds the SFT stages already trained in this scenario (`sft+kto` starts from
    `sft`'s adapter rather than training it again); their time counts in the total.
    `stage_settings` is what the DPO/KTO stage trains with."""
    engine = create_db_engine(db_url)
    with Session(engine) as session:
        corrected = from_feedback(session, alias, 4)
        pairs = pairs_from_feedback(session, alias)
        judged = judged_from_feedback(session, alias, Thresholds())
    engine.dispose()
    began = time.perf_counter()
    start, earlier, records = None, 0.0, {}
    if objective.startswith("seed+"):
        corrected = corrected + seed
    if "sft" in objective:
        key = "seed+sft" if objective.startswith("seed+") else "sft"
        if key not in stages:
            result = Trainer(model_dir, settings, work / "sft").train(corrected)
            stages[key] = (result.adapter_dir, time.perf_counter() - began, run_record(result))
            began = time.perf_counter()
        start, earlier, records["sft"] = stages[key]
    kind = objective.split("+")[-1]
    if kind in ("dpo", "kto"):
        rows = pairs if kind == "dpo" else judged
        result = PreferenceTrainer(model_dir, stage_settings, work / kind).train_preferences(
            kind, list(rows), start
        )
        start, records[kind] = result.adapter_dir, run_record(result)
        print(f"    {kind} stage: {result.steps} steps, best {result.best_step}, "
              f"{result.seconds:.0f} s: {result.stop_reason}", flush=True)  # fmt: skip
    assert start is not None
    return start, earlier + time.perf_counter() - began, records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", nargs="+", default=["support_desk", "city_services"])
    parser.add_argument("--objectives", nargs="+", default=["sft", "dpo", "kto", "sft+kto"])
    parser.add_argument("--flawed-share", type=float, default=0.7)
    parser.add_argument("--flip", type=float, default=0.12)
    parser.add_argument("--corrections", type=int, default=20)
    parser.add_argument("--questions", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--set", nargs="*", default=[], help="every stage's settings, key=json")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help="preference-stage settings an objective[label] trains with: label:key=json,...",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model_dir = ModelSettings().model_dir()
    overrides = parse_overrides(args.set)
    settings = RetrainSettings(**overrides)
    variants: dict[str, RetrainSettings] = {"": settings}
    for entry in args.variants:
        label, _, pairs = entry.partition(":")
        variants[label] = RetrainSettings(**overrides | parse_overrides(pairs.split(",")))
    # "objective[label]": the objective, trained with the variant's preference-stage settings
    runs = [(title, *title.removesuffix("]").partition("[")[::2]) for title in args.objectives]
    unknown = {label for _, _, label in runs} - set(variants)
    if unknown:
        parser.error(f"objectives name variants not given with --variants: {sorted(unknown)}")
    rows_out: list[dict[str, Any]] = []
    with platform() as running, tempfile.TemporaryDirectory() as tmp:
        evaluator = Evaluator(
            running.engine, max_tokens=64, concurrency=16, api_key=running.engine_key
        )
        client = httpx.Client(base_url=running.gateway, timeout=300)
        for name in args.scenarios:
            rows = load_flawed(name)
            train_rows = [r for r in rows if not r["heldout"]]
            if args.questions:
                train_rows = random.Random(0).sample(
                    train_rows, min(args.questions, len(train_rows))
                )
            held = [r for r in rows if r["heldout"]]
            work = Path(tmp) / name
            adapter = production(model_dir, train_rows, args.flawed_share, work)
            alias = name.replace("_", "-")
            serve(client, running.adapter_store, alias, adapter)
            answers = traffic(running.gateway, alias, train_rows)
            counts = judge(client, train_rows, answers, args.flip, args.corrections).as_dict()
            print(f"{name}: {len(answers)} answers, {counts}", flush=True)
            evaluator.load(f"{alias}-production", adapter)
            base = measure(evaluator, f"{alias}-production", held)
            evaluator.unload(f"{alias}-production")
            rows_out.append({"scenario": name, "objective": "production", **base, **counts})
            print(f"  production: flaw rate {base['flaw_rate']:.2f}, Rouge-L {base['rouge_l']:.3f}")
            seed = habits(train_rows, args.flawed_share)
            stages: dict[str, tuple[Path, float, dict[str, Any]]] = {}
            for n, (title, objective, label) in enumerate(runs):
                path, seconds, records = train(
                    objective,
                    model_dir,
                    running.db_url,
                    alias,
                    work / f"{objective}-{n}",
                    seed,
                    stages,
                    settings,
                    variants[label],
                )
                engine_name = f"{alias}-{objective.replace('+', '-')}-{n}"
                evaluator.load(engine_name, path)
                result = measure(evaluator, engine_name, held)
                evaluator.unload(engine_name)
                row = {
                    "scenario": name,
                    "objective": title,
                    **result,
                    "seconds": round(seconds),
                    "stages": records,
                }
                rows_out.append(row)
                print(f"  {title}: flaw rate {result['flaw_rate']:.2f}, Rouge-L "
                      f"{result['rouge_l']:.3f}, {seconds:.0f} s", flush=True)  # fmt: skip
                if args.out:
                    args.out.write_text(json.dumps(rows_out, indent=2))
    print("\n| scenario | objective | flaw rate | Rouge-L | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows_out:
        print(f"| {r['scenario']} | {r['objective']} | {r['flaw_rate']:.2f} | {r['rouge_l']:.3f} "
              f"| {r.get('seconds', '')} |")  # fmt: skip


if __name__ == "__main__":
    main()
