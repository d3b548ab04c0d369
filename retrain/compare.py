"""Every side of a run's comparison answers the same prompts through the same engine, greedy.

The sides: production, the candidate adapter, and the prompting arms (the base model with
`fewshot_k` of the training examples in its prompt, fixed or retrieved per prompt). The
candidate and each arm are scored against the same references, and against production's
answers by a pairwise judge when one is configured, so the gate and the adapter-or-prompt
decision read one table. What each side costs a request (prompt and answer tokens, seconds
at the evaluator's concurrency) is kept, because a few-shot prompt pays for its examples
on every request. The forgetting check asks the retention set of the base, production and
the candidate in the same pass.
"""

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retrain.dataset import DatasetError, Example
from retrain.decision import decide_artifact
from retrain.evaluate import Evaluator
from retrain.fewshot import ShotPicker, shots_from
from retrain.judge import Judge
from retrain.metrics import Scores, means, score_items
from retrain.outcome import Reporter, RunOutcome, SetScores
from retrain.retention import compare_to_base, load_retention
from retrain.settings import RetrainSettings

log = logging.getLogger(__name__)
Prepare = Callable[[list[Example]], list[Example]]
ARMS = ("fixed", "retrieved")


@dataclass(frozen=True)
class Side:
    name: str  # production, candidate, or a prompting arm
    model: str  # the engine name it answers under
    prepare: Prepare | None = None  # what it does to each prompt first (adds shots)


def check_arms(train: Sequence[Example], settings: RetrainSettings) -> None:
    """Fails before training when the arms cannot be built as asked."""
    k = settings.fewshot_k
    if k and k > len(train):
        raise DatasetError(
            f"LORALOOP_RETRAIN_FEWSHOT_K is {k}, more than the {len(train)} training examples "
            "the prompting arms choose from; lower it, or 0 turns the arms off"
        )


class Comparison:
    """Builds the sides, asks every set of each, scores them, records them on the run."""

    def __init__(
        self,
        evaluator: Evaluator,
        settings: RetrainSettings,
        base_model: str,
        count_tokens: Callable[[str], int],
        encode: Callable[[Sequence[str]], Any],
    ) -> None:
        self.evaluator = evaluator
        self.settings = settings
        self.base_model = base_model
        self.count = count_tokens
        self.encode = encode

    def arms(self, train: Sequence[Example]) -> tuple[list[Side], ShotPicker | None]:
        s = self.settings
        shots = shots_from(train, self.count) if s.fewshot_k else []
        if not shots:
            return [], None
        picker = ShotPicker(
            shots,
            self.encode,
            s.fewshot_k,
            s.fewshot_max_tokens,
            self.evaluator.context_length(self.base_model),
            s.eval_max_tokens,
            self.count,
        )
        return [
            Side("fixed", self.base_model, picker.fixed),
            Side("retrieved", self.base_model, picker.retrieved),
        ], picker

    def run(
        self,
        run: RunOutcome,
        candidate: str,
        sets: list[tuple[str, list[Example]]],
        train: Sequence[Example],
        judge: Judge | None,
        report: Reporter,
    ) -> list[tuple[str, list[Example], Scores]]:
        """(set, items, candidate's scores against production's) per set, as the gate
        reads them; the arms, their cost and the forgetting check go on `run`."""
        arms, picker = self.arms(train)
        sides = [Side("production", run.baseline), Side("candidate", candidate), *arms]
        total = len(sides) * sum(len(items) for _, items in sets)
        done, scored, lines = 0, [], []
        cost: dict[str, list[tuple[int, Any]]] = {side.name: [] for side in sides}
        for name, items in sets:
            answers: dict[str, list[str]] = {}
            for side in sides:
                asked = self.evaluator.ask(
                    side.model,
                    side.prepare(list(items)) if side.prepare else items,
                    lambda d, _, offset=done: report.advance("evaluate", offset + d, total),
                )
                answers[side.name] = asked.texts
                cost[side.name].append((len(items), asked))
                done += len(items)
            by_side = {
                side.name: score_items(
                    self.settings.metrics,
                    items,
                    answers[side.name],
                    answers["production"],
                    judge,
                )
                for side in sides[1:]
            }
            candidate_means, production_means = means(by_side["candidate"])
            arm_means = {arm.name: means(by_side[arm.name])[0] for arm in arms}
            run.evaluations.append(
                SetScores(name, len(items), candidate_means, production_means, arm_means)
            )
            scored.append((name, items, by_side["candidate"]))
            lines += [
                json.dumps(
                    {"set": name, "id": ex.id, "reference": ex.answer}
                    | {side.name: answers[side.name][i] for side in sides}
                )
                for i, ex in enumerate(items)
            ]
        run.arms = {
            "k": self.settings.fewshot_k,
            "sides": [side.name for side in sides],
            "trimmed_shots": picker.trimmed if picker else 0,
            "template_shots": [asdict(shot) for shot in picker.template_shots()] if picker else [],
            "cost": {name: _mean_cost(parts) for name, parts in cost.items()},
        }
        retention_lines = self.retention(run, candidate, judge)
        (run.run_dir / "eval_predictions.jsonl").write_text(
            "".join(x + "\n" for x in lines + retention_lines)
        )
        return scored

    def retention(self, run: RunOutcome, candidate: str, judge: Judge | None) -> list[str]:
        """The forgetting check (off when no retention set is configured)."""
        path: Path | None = self.settings.retention_set
        if path is None:
            return []
        items = load_retention(path)
        models = {"base": self.base_model, "production": run.baseline, "candidate": candidate}
        answers: dict[str, list[str]] = {}
        for side, model in models.items():
            if side == "production" and model == self.base_model:
                answers[side] = answers["base"]  # the base model serves: the same answers
                continue
            answers[side] = self.evaluator.answers(
                model, items, max_tokens=self.settings.retention_max_tokens
            )
        asked_judge = judge if self.settings.retention_judge else None
        result = compare_to_base(items, answers, self.settings.retention_max_drop, asked_judge)
        run.retention = result.as_dict()
        return [
            json.dumps({"set": "retention", "id": ex.id} | {s: a[i] for s, a in answers.items()})
            for i, ex in enumerate(items)
        ]


def _mean_cost(parts: list[tuple[int, Any]]) -> dict[str, float]:
    n = sum(size for size, _ in parts) or 1
    return {
        key: round(sum(size * getattr(asked, key) for size, asked in parts) / n, 4)
        for key in ("prompt_tokens", "completion_tokens", "seconds")
    }


def token_counter(model_dir: Path) -> Callable[[str], int]:
    """Counts tokens with the base model's tokenizer, loaded on first use."""
    loaded: list[Any] = []

    def count(text: str) -> int:
        if not loaded:
            from transformers import AutoTokenizer

            loaded.append(AutoTokenizer.from_pretrained(model_dir, local_files_only=True))
        return len(loaded[0](text, add_special_tokens=False)["input_ids"])

    return count


def decide_run(run: RunOutcome, margin: float) -> dict[str, Any]:
    """Adapter, prompt or production, from the gate and the deciding set's arms."""
    gate = run.gate
    assert gate is not None
    arms = {name: means[gate.primary] for name, means in run.evaluations[-1].arms.items()}
    cost = run.arms.get("cost") or {}
    base = (cost.get("production") or {}).get("prompt_tokens", 0.0)
    extra = {name: (cost.get(name) or {}).get("prompt_tokens", 0.0) - base for name in arms}
    verdict = decide_artifact(
        gate.primary,
        margin,
        gate.production[gate.primary],
        gate.candidate[gate.primary],
        arms,
        gate.promote,
        extra,
        shippable=("fixed",),  # a template carries fixed examples; retrieval is per request
    )
    return verdict.as_dict()
