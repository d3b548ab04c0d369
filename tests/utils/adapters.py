"""LoRA adapters for tests: real ones the engine loads, and adapter-shaped folders the
fake engine accepts."""

import json
from pathlib import Path


def make_adapter(model_dir: Path, out: Path, seed: int = 0, identity: bool = False) -> None:
    """A LoRA adapter with random (not zero) B matrices, so it visibly changes answers;
    `identity`: zero B matrices, so it answers exactly as the base model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=8,
        lora_alpha=32,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=identity,
        task_type="CAUSAL_LM",
    )
    get_peft_model(base, config).save_pretrained(out)


def make_adapter_dir(
    store: Path, name: str, rank: int = 8, base: str = "/models/base", **extra: object
) -> Path:
    """A directory shaped like a peft adapter (the fake engine does not read weights)."""
    path = store / name
    path.mkdir(parents=True)
    config = {
        "r": rank,
        "lora_alpha": 16,
        "base_model_name_or_path": base,
        "target_modules": ["q_proj", "v_proj"],
        "peft_type": "LORA",
        **extra,
    }
    (path / "adapter_config.json").write_text(json.dumps(config))
    (path / "adapter_model.safetensors").write_bytes(name.encode())
    return path
