"""A batch too long for one forward pass is split and its gradients accumulated: the same
loss and the same gradients as one pass, in parts that stay within the token budget."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from retrain.settings import RetrainSettings
from retrain.train import IGNORE, Trainer, micro_batches
from serve.settings import ModelSettings

Row = tuple[list[int], list[int]]


def row(length: int, answer: int) -> Row:
    ids = [(7 * i + length) % 1000 + 10 for i in range(length)]
    return ids, [IGNORE] * (length - answer) + ids[length - answer :]


def test_parts_stay_within_the_budget_and_keep_the_order() -> None:
    rows = [row(n, 2) for n in (10, 30, 5, 40, 100, 3)]
    parts = micro_batches(rows, 64)
    assert [r for part in parts for r in part] == rows
    for part in parts:
        assert len(part) == 1 or len(part) * max(len(ids) for ids, _ in part) <= 64
    assert [len(p) for p in parts] == [2, 1, 1, 1, 1], "the 100-token row is alone"
    assert micro_batches(rows, 10_000) == [rows]
    assert micro_batches(rows[:3], 1) == [[r] for r in rows[:3]]


def test_a_split_batch_gives_one_passes_loss_and_gradients() -> None:
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(ModelSettings().model_dir(), dtype=torch.float32)
    config = LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)
    model = get_peft_model(base, config)
    rows = [row(12, 4), row(20, 9), row(7, 3)]
    trainer = Trainer.__new__(Trainer)  # only its settings and device take part
    results = []
    for budget in (10_000, 40, 16):  # one pass; two parts; one row per part
        trainer.settings, trainer.device = RetrainSettings(micro_batch_tokens=budget), "cpu"
        model.zero_grad()
        loss = trainer._backward(model, rows, pad=0)
        results.append((loss, [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (whole, expected), *splits = results
    for loss, grads in splits:
        assert loss == pytest.approx(whole, rel=1e-5)
        for got, want in zip(grads, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-5)
