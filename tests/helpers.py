"""Helpers shared by tests and benchmarks."""

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
