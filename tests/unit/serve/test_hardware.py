"""Adapter slots chosen from the model and the machine; peft counts the parameters as oracle."""

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

from serve.engine import EngineManager
from serve.hardware import MAX_SLOTS, lora_slots, slot_bytes
from serve.settings import EngineSettings, ModelSettings

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GIB = 2**30


def shipped_config() -> dict[str, object]:
    return json.loads((ModelSettings().model_dir() / "config.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "shape",
    [
        {},  # the shipped model: 9 heads of 64, 3 key/value heads
        {"hidden_size": 512, "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": None},
        {"hidden_size": 256, "num_attention_heads": 4, "head_dim": 128, "num_key_value_heads": 2},
    ],
)
@pytest.mark.parametrize("rank", [8, 16])
def test_a_slot_holds_what_peft_counts_for_every_projection(
    shape: dict[str, object], rank: int
) -> None:
    config = {**shipped_config(), "num_hidden_layers": 2, **shape}
    hf = AutoConfig.for_model(**{k: v for k, v in config.items() if v is not None})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf)
    peft = get_peft_model(model, LoraConfig(r=rank, target_modules=PROJECTIONS))
    trainable, _ = peft.get_nb_trainable_parameters()
    assert slot_bytes(config, rank, 4) == trainable * 4


def test_slots_grow_with_the_device_and_are_bounded() -> None:
    config = shipped_config()
    size = slot_bytes(config, 16, 2)
    small = lora_slots(config, 16, 2, int(size * 25), 64 * GIB, 1.0)  # a tenth: 2.5 slots
    assert small.gpu == 2
    assert lora_slots(config, 16, 2, 80 * GIB, 64 * GIB, 0.9).gpu == MAX_SLOTS
    tiny = lora_slots(config, 16, 2, size, 64 * GIB, 1.0)
    assert tiny.gpu == 1, "never zero slots"
    none = lora_slots(config, 16, 4, None, 64 * GIB, 0.4)
    assert none.gpu == 4, "no device: the CPU engine's few slots"
    assert none.cpu == int(0.05 * 64 * GIB // slot_bytes(config, 16, 4))
    assert lora_slots(config, 16, 2, None, 16 * 2**40, 0.4).cpu == 512
    assert "MiB per rank-16 slot" in none.reason


def test_the_engine_uses_chosen_slots_unless_settings_say(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(shipped_config()))
    manager = EngineManager(EngineSettings(), tmp_path, "base")
    cmd = manager.command()
    chosen = manager.lora_slots()
    assert cmd[cmd.index("--max-loras") + 1] == str(chosen.gpu)
    assert cmd[cmd.index("--max-cpu-loras") + 1] == str(chosen.cpu)
    cmd = EngineManager(EngineSettings(max_loras=3, max_cpu_loras=7), tmp_path, "base").command()
    assert cmd[cmd.index("--max-loras") + 1] == "3"
    assert cmd[cmd.index("--max-cpu-loras") + 1] == "7"
