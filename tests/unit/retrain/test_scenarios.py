"""The bundled scenarios are valid chat data, and each preference scenario's flaw is
checkable: every flawed answer has it, no good answer does."""

import json
from pathlib import Path

import pytest

from loraloop.flaws import is_flawed
from retrain.dataset import read_seed

SCENARIOS = Path(__file__).resolve().parents[3] / "retrain" / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.jsonl")), ids=lambda p: p.stem)
def test_scenario_rows_are_chat_examples(path: Path) -> None:
    examples = read_seed(path)
    assert len(examples) >= 200
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    pairs = list(zip(examples, rows, strict=True))
    answers = {
        held: {ex.answer for ex, r in pairs if r["heldout"] is held} for held in (True, False)
    }
    assert answers[True] and not answers[True] & answers[False], "held-out topics never trained"
    assert all(ex.answer.strip() for ex in examples), "an answer is text or a tool call"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*_flawed.jsonl")), ids=lambda p: p.stem)
def test_the_planted_flaw_is_checkable(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(is_flawed(r["flawed"], r["flaw"]) for r in rows)
    assert not any(is_flawed(r["messages"][-1]["content"], r["flaw"]) for r in rows)
