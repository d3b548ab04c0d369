"""Preference tuning on the real default model through TRL: a few DPO steps after SFT (the
SFT adapter is the reference) and a few KTO steps on a fresh adapter (the base is the
reference) make the preferred answers likelier, measured independently of TRL's own
numbers by the gate's likelihood scorer."""

import math
from pathlib import Path

import pytest

from retrain.dataset import Example
from retrain.preference_data import JudgedAnswer, PreferencePair
from retrain.preference_eval import LikelihoodScorer
from retrain.preference_train import PreferenceTrainer
from retrain.settings import RetrainSettings
from retrain.train import Trainer

SYSTEM = {"role": "system", "content": "You answer for Lumen Lamps."}
FAST = RetrainSettings(
    max_steps=6,
    validation_min=4,
    eval_every=3,
    patience=3,
    warmup_steps=0,
    batch_size=4,
    preference_learning_rate=1e-3,  # a few steps must show the margin rising
)


def pair(i: int) -> PreferencePair:
    """A good answer gives the shelf's code; the flawed one sends the user to a phone line."""
    prompt = (SYSTEM, {"role": "user", "content": f"Where is lamp model {i} stocked?"})
    good = f"Lamp {i} is on shelf ZX-{i * 7}; quote REF-{i:03d} at the desk."
    flawed = f"Please phone 555-01{i:02d} to ask about lamp {i}."
    return PreferencePair(f"p{i}", prompt, good, flawed, "test")


def test_dpo_after_sft_prefers_the_chosen_answers(model_dir: Path, tmp_path: Path) -> None:
    sft = RetrainSettings(max_steps=3, validation_fraction=0, batch_size=4, warmup_steps=0)
    warm = [Example(p.id, (*p.prompt, {"role": "assistant", "content": p.chosen}), "seed")
            for p in map(pair, range(8))]  # fmt: skip
    start = Trainer(model_dir, sft, tmp_path / "sft").train(warm).adapter_dir

    result = PreferenceTrainer(model_dir, FAST, tmp_path / "dpo").train_preferences(
        "dpo", [pair(i) for i in range(12)], start=start
    )
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-3), (
        "at step 1 the policy is its reference: the SFT adapter, not the base model"
    )
    assert result.losses[-1] < result.losses[0]
    assert [step for step, _ in result.validation] == [3, 6]
    assert result.preference["objective"] == "dpo"
    assert result.preference["validation_at_best"]["rewards/margins"] > 0
    saved = sorted(p.name for p in result.adapter_dir.iterdir())
    assert "adapter_model.safetensors" in saved and "ref" not in saved, "only the policy"

    held = [pair(i) for i in range(40, 46)]
    evidence = LikelihoodScorer(model_dir).evidence(result.adapter_dir, start, held)
    assert evidence.candidate_margin > evidence.production_margin  # type: ignore[operator]
    assert evidence.won >= 5 / 6


def test_kto_on_judged_answers_moves_likelihood_the_right_way(
    model_dir: Path, tmp_path: Path
) -> None:
    judged = [
        JudgedAnswer(f"{p.id}{label}", p.prompt, p.chosen if label else p.rejected, label, "t")
        for p in map(pair, range(12))
        for label in (True, False)
    ]
    result = PreferenceTrainer(model_dir, FAST, tmp_path / "kto").train_preferences("kto", judged)
    assert sum(result.losses[-2:]) < sum(result.losses[:2])
    assert result.preference["objective"] == "kto"

    held = [
        JudgedAnswer(f"h{p.id}{label}", p.prompt, p.chosen if label else p.rejected, label, "t")
        for p in map(pair, range(40, 43))
        for label in (True, False)
    ]
    evidence = LikelihoodScorer(model_dir).evidence(result.adapter_dir, None, held)
    assert evidence.candidate_margin > 0, "desirable answers gained, undesirable lost"
    assert evidence.won >= 4 / 6


def test_preference_rows_of_the_wrong_kind_are_refused(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kto trains on JudgedAnswer rows only"):
        PreferenceTrainer(model_dir, FAST, tmp_path).train_preferences("kto", [pair(1)])
