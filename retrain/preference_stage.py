"""The preference side of a run: DPO pairs and KTO judged answers gathered from the system of
record (and `preference_files`), what `auto` can choose from, the DPO/KTO stage, and the
evidence the gate reads.

Preferences are curated against the same prompts the gate scores (the held-out split and the
golden set), so no stage trains on a question it is judged on. A preference-only run with no
chat examples to hold out still has a held-out Rouge-L set: its held-out preferences, with the
preferred answer as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session

from feedback.signals import Thresholds
from retrain.curate import user_text
from retrain.dataset import DatasetError, Example
from retrain.objectives import Available
from retrain.preference_data import (
    CuratedPreferences,
    Preference,
    PreferencePair,
    balance,
    curate_preferences,
    judged_from_feedback,
    pairs_from_feedback,
    read_preferences,
    require_preferences,
)
from retrain.settings import RetrainSettings

if TYPE_CHECKING:
    from retrain.train import Progress, TrainResult

STAGES = {"dpo": "pairs", "kto": "judged"}


@dataclass
class Preferences:
    pairs: CuratedPreferences | None = None
    judged: CuratedPreferences | None = None

    def available(self, examples: int) -> Available:
        counts = balance(self.judged.train if self.judged else [])
        return Available(
            examples=examples,
            pairs=len(self.pairs.train) if self.pairs else 0,
            desirable=counts["desirable"],
            undesirable=counts["undesirable"],
        )

    def for_stage(self, kind: str, settings: RetrainSettings) -> CuratedPreferences:
        """The curated rows a DPO or KTO stage trains on; refuses too few, saying why."""
        curated = self.pairs if kind == "dpo" else self.judged
        if curated is None:
            what = (
                "preference pairs (corrections, pairwise reviews)"
                if kind == "dpo"
                else ("judged answers (end-user ratings, review scores)")
            )
            raise DatasetError(f"{kind} needs {what}, and there are none")
        require_preferences(curated, settings)
        return curated

    def report(self) -> dict[str, Any]:
        return {
            name: curated.report
            for name, curated in (("pairs", self.pairs), ("judged", self.judged))
            if curated is not None
        }


def gather(
    db: Engine,
    alias: str | None,
    settings: RetrainSettings,
    thresholds: Thresholds,
    held_prompts: list[str],
    pii: dict[str, str] | None = None,
) -> Preferences:
    """Every stored judgment of the alias plus the preference files, curated (not yet
    required to be enough: `auto` reads the counts first)."""
    with Session(db) as session:
        pairs: list[Preference] = list(pairs_from_feedback(session, alias, pii))
        judged: list[Preference] = list(judged_from_feedback(session, alias, thresholds, pii))
    for path in settings.preference_files:
        for row in read_preferences(path):
            (pairs if isinstance(row, PreferencePair) else judged).append(row)
    return Preferences(
        curate_preferences(pairs, settings, held_prompts, pii, require=False) if pairs else None,
        curate_preferences(judged, settings, held_prompts, pii, require=False) if judged else None,
    )


def gate_prompts(*sets: list[Example]) -> list[str]:
    return [user_text(ex.prompt) for examples in sets for ex in examples]


def reference_examples(items: list[Preference]) -> list[Example]:
    """Held-out preferences as Rouge-L items: the preferred answer is the reference."""
    examples = []
    for item in items:
        if isinstance(item, PreferencePair):
            answer = item.chosen
        elif item.desirable:
            answer = item.completion
        else:
            continue
        messages = (*item.prompt, {"role": "assistant", "content": answer})
        examples.append(Example(f"preference:{item.id}", messages, "preference"))
    return examples


def train_stage(
    kind: str,
    curated: CuratedPreferences,
    model_dir: Path,
    settings: RetrainSettings,
    run_dir: Path,
    start: Path | None,
    progress: Progress | None = None,
) -> TrainResult:
    from retrain.preference_train import PreferenceTrainer

    trainer = PreferenceTrainer(model_dir, settings, run_dir / kind)
    return trainer.train_preferences(kind, curated.train, start, progress)  # type: ignore[arg-type]


def gate_evidence(
    model_dir: Path,
    candidate: Path,
    production: Path | None,
    held: list[Preference],
    chat_template: str = "auto",
) -> tuple[dict[str, Any], list[str]]:
    """The candidate's held-out preference evidence against production, and the reasons it
    gives to reject (none when the candidate ranks the preferred answers better)."""
    from retrain.preference_eval import LikelihoodScorer

    if not held:
        return {"items": 0}, []
    scorer = LikelihoodScorer(model_dir, chat_template=chat_template)
    evidence = scorer.evidence(candidate, production, held)
    reasons = []
    if evidence.production_accuracy is not None and (
        evidence.candidate_accuracy < evidence.production_accuracy
    ):
        reasons.append(
            f"held-out preference accuracy falls: {evidence.production_accuracy:.3f} -> "
            f"{evidence.candidate_accuracy:.3f} ({evidence.items} pairs)"
        )
    if evidence.won < 0.5:
        reasons.append(
            f"the candidate favours the preferred answer more than production on only "
            f"{evidence.won:.0%} of {evidence.items} held-out preferences"
        )
    return evidence.as_dict(), reasons
