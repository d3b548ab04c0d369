"""Preference evidence for the gate: does the candidate give the preferred answer more
likelihood, relative to the other, than production does?

For each held-out pair the margin of a model is log p(chosen | prompt) - log p(rejected |
prompt), summed over the answer's tokens as DPO's implicit reward is. A judged answer
(KTO) has no partner, so its evidence is the change against production: a desirable answer
should gain log-likelihood under the candidate, an undesirable one lose it. Both are computed
here with transformers on the adapters' files (not through the engine): exact token
log-probabilities, deterministic, and cheap for the sizes a gate scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from retrain.dataset import Example
from retrain.preference_data import JudgedAnswer, Preference, PreferencePair
from retrain.train import IGNORE, collate, encode
from serve.chat_template import load_tokenizer


@dataclass(frozen=True)
class PreferenceEvidence:
    items: int
    candidate_accuracy: float  # pairs: share the candidate ranks right; judged: moved right
    production_accuracy: float | None  # pairs only: the same share for production
    candidate_margin: float  # pairs: mean margin; judged: mean signed change vs production
    production_margin: float | None
    won: float  # share of items where the candidate's evidence beats production's

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


class LikelihoodScorer:
    """The base model once, with each adapter loaded under its own name."""

    def __init__(
        self,
        model_dir: Path,
        max_seq_len: int = 512,
        batch_size: int = 8,
        chat_template: str = "auto",
    ) -> None:
        self.tokenizer = load_tokenizer(model_dir, chat_template)
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self.names: dict[Path, str] = {}

    def _use(self, adapter: Path | None) -> Any:
        """The model answering as `adapter` (None: the base model)."""
        if adapter is None:
            return None
        if adapter not in self.names:
            name = f"a{len(self.names)}"
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(adapter, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, adapter, adapter_name=name)
            self.names[adapter] = name
        self.model.set_adapter(self.names[adapter])
        return self.names[adapter]

    @torch.no_grad()
    def logps(self, adapter: Path | None, prompts: list[tuple], answers: list[str]) -> list[float]:
        """Summed log-probability of each answer after its prompt."""
        self.model.eval()
        rows = []
        for prompt, answer in zip(prompts, answers, strict=True):
            messages = (*prompt, {"role": "assistant", "content": answer})
            row = encode(Example("x", messages, "eval"), self.tokenizer, self.max_seq_len)
            rows.append(row if row is not None else ([self.pad], [IGNORE]))
        name = self._use(adapter)
        out: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            batch = collate(rows[start : start + self.batch_size], self.pad)
            if name is None and isinstance(self.model, PeftModel):
                with self.model.disable_adapter():
                    logits = self.model(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                    ).logits
            else:
                logits = self.model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits
            labels = batch["labels"][:, 1:]
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out += (picked * (labels != IGNORE)).sum(dim=1).tolist()
        return out

    def evidence(
        self, candidate: Path, production: Path | None, items: list[Preference]
    ) -> PreferenceEvidence:
        """The candidate against production (an adapter, or None for the base model)."""
        if not items:
            raise ValueError("no held-out preferences to score")
        prompts = [item.prompt for item in items]
        if all(isinstance(item, PreferencePair) for item in items):
            pairs = [item for item in items if isinstance(item, PreferencePair)]
            margins = {}
            for side, adapter in (("candidate", candidate), ("production", production)):
                chosen = self.logps(adapter, prompts, [p.chosen for p in pairs])
                rejected = self.logps(adapter, prompts, [p.rejected for p in pairs])
                margins[side] = [c - r for c, r in zip(chosen, rejected, strict=True)]
            cand, prod = margins["candidate"], margins["production"]
            return PreferenceEvidence(
                items=len(pairs),
                candidate_accuracy=_share(m > 0 for m in cand),
                production_accuracy=_share(m > 0 for m in prod),
                candidate_margin=sum(cand) / len(cand),
                production_margin=sum(prod) / len(prod),
                won=_share(c > p for c, p in zip(cand, prod, strict=True)),
            )
        judged = [item for item in items if isinstance(item, JudgedAnswer)]
        answers = [item.completion for item in judged]
        cand = self.logps(candidate, prompts, answers)
        prod = self.logps(production, prompts, answers)
        signed = [
            (c - p) if item.desirable else (p - c)
            for item, c, p in zip(judged, cand, prod, strict=True)
        ]
        return PreferenceEvidence(
            items=len(judged),
            candidate_accuracy=_share(s > 0 for s in signed),
            production_accuracy=None,
            candidate_margin=sum(signed) / len(signed),
            production_margin=None,
            won=_share(s > 0 for s in signed),
        )


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(1 for v in values if v) / len(values) if values else 0.0
