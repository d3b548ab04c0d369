"""LoRA training on the real default model: assistant-only loss, determinism, resume."""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from retrain.dataset import Example
from retrain.settings import RetrainSettings
from retrain.train import IGNORE, Trainer, encode

SETTINGS = RetrainSettings(epochs=1, batch_size=4, learning_rate=1e-3, checkpoint_every=1)


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
