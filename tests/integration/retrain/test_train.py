"""LoRA training on the real default model: assistant-only loss, determinism, resume,
early stopping that keeps the best weights, and the search over settings."""

import json
import re
from pathlib import Path

import pytest
from peft import PeftModel
from transformers import AutoTokenizer

from retrain.dataset import Example
from retrain.schedule import PLATEAU, split_validation
from retrain.search import SearchError, train_best
from retrain.settings import RetrainSettings
from retrain.train import IGNORE, Trainer, answer_key, encode, load_base

SETTINGS = RetrainSettings(
    max_epochs=1,
    min_steps=0,
    validation_fraction=0,
    batch_size=4,
    learning_rate=1e-3,
    checkpoint_every=1,
)
OVERFIT = RetrainSettings(
    max_steps=90,
    validation_min=4,
    eval_every=3,
    patience=3,
    warmup_steps=3,
    batch_size=4,
    learning_rate=5e-3,
    checkpoint_every=1000,
)


def examples(n: int = 8) -> list[Example]:
    return [
        Example(
            f"e{i}",
            (
                {"role": "system", "content": "You answer for Lumen Lamps."},
                {"role": "user", "content": f"What is the code of shelf {i}?"},
                {"role": "assistant", "content": f"Shelf {i} has code ZX-{i * 7}."},
            ),
            "seed",
        )
        for i in range(n)
    ]


def test_only_the_answer_is_learned(model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = encode(examples(1)[0], tokenizer, 256)
    assert encoded is not None
    ids, labels = encoded
    learned = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE])
    assert learned.startswith("Shelf 0 has code ZX-0.")
    assert "Lumen" not in learned and "shelf 0?" not in learned
    assert encode(examples(1)[0], tokenizer, 8) is None  # no room left for the answer


def test_deterministic_and_resumable(model_dir: Path, tmp_path: Path) -> None:
    first = Trainer(model_dir, SETTINGS, tmp_path / "a").train(examples())
    second = Trainer(model_dir, SETTINGS, tmp_path / "b").train(examples())
    assert first.steps == 2 and first.losses == second.losses
    assert first.quantized is False and first.device == "cpu"
    config = json.loads((first.adapter_dir / "adapter_config.json").read_text())
    assert config["r"] == SETTINGS.lora_r and not config.get("modules_to_save")
    assert (first.adapter_dir / "adapter_model.safetensors").is_file()

    def stop_at_two(step: int, total: int, loss: float) -> None:
        if step == 2:
            raise KeyboardInterrupt

    run = Trainer(model_dir, SETTINGS, tmp_path / "c")
    with pytest.raises(KeyboardInterrupt):
        run.train(examples(), stop_at_two)
    resumed = run.train(examples())
    assert resumed.resumed_from == 1 and resumed.steps == 2
    assert resumed.losses[0] == first.losses[0]


def test_a_plateau_stops_training_before_the_budget_and_keeps_the_best_weights(
    model_dir: Path, tmp_path: Path
) -> None:
    """20 shelves to memorise, 4 unseen ones to validate on: the validation loss falls, then
    stops improving as the codes are memorised; the plateau rule ends the run well inside
    the step budget and the adapter is the best measurement's weights, not the last step's."""
    trainer = Trainer(model_dir, OVERFIT, tmp_path / "run")
    result = trainer.train(examples(24))
    plan = result.plan
    assert plan is not None and plan.validation_examples == 4 and plan.eval_every == 3
    steps = [s for s, _ in result.validation]
    assert steps == list(range(3, result.steps + 1, 3))
    assert result.stop_rule == PLATEAU and result.steps < OVERFIT.max_steps
    assert "plateau at step" in result.stop_reason
    cut = re.search(r"rate cut to 0.1x at step (\d+)", result.stop_reason)
    assert cut, "the first plateau cuts the rate; the second stops"
    assert int(cut[1]) < result.steps and int(cut[1]) in steps
    losses = [loss for _, loss in result.validation]
    best_loss = min(losses)
    assert losses[0] > 1.5 * best_loss  # it learned before it stopped
    # the lowest reading's weights, or a later reading's as good (within the keep tolerance)
    kept_loss = result.best_validation_loss
    assert kept_loss is not None and kept_loss <= best_loss * (1 + OVERFIT.keep_tolerance)
    assert steps[losses.index(best_loss)] <= result.best_step < result.steps

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    keyed = [(ex.id, encode(ex, tokenizer, OVERFIT.max_seq_len)) for ex in examples(24)]
    _, held = split_validation(keyed, OVERFIT, [answer_key(ex) for ex in examples(24)])
    kept = PeftModel.from_pretrained(load_base(model_dir, False, "cpu"), result.adapter_dir)
    again = trainer.validation_loss(kept, held, tokenizer.pad_token_id or 0)
    assert again == pytest.approx(kept_loss, abs=1e-4)
    assert losses[-1] > kept_loss  # so the kept weights are not the last step's


def test_search_trains_each_trial_and_keeps_the_lowest_validation_loss(
    model_dir: Path, tmp_path: Path
) -> None:
    settings = OVERFIT.model_copy(
        update={
            "search": {"learning_rate": [1e-5, 2e-3]},
            "max_steps": 6,
            "learning_rate_examples": 4,  # would scale a rate; a trial's rate is exact
        }
    )
    result, trials = train_best(model_dir, settings, tmp_path / "run", examples(24))
    assert [t.params for t in trials] == [{"learning_rate": 1e-5}, {"learning_rate": 2e-3}]
    assert [t.result.plan and t.result.plan.learning_rate for t in trials] == [1e-5, 2e-3]
    best = min(trials, key=lambda t: t.score)
    assert result is best.result and result.adapter_dir.parent.name in {"00", "01"}
    assert all((tmp_path / "run" / "trials" / d / "adapter").is_dir() for d in ("00", "01"))
    assert trials[0].score != trials[1].score

    with pytest.raises(SearchError, match="asks for 4 trials; at most 3"):
        train_best(
            model_dir,
            settings.model_copy(
                update={
                    "search": {"learning_rate": [1e-4, 2e-4], "lora_r": [4, 8]},
                    "search_max_trials": 3,
                }
            ),
            tmp_path / "other",
            examples(24),
        )
