"""The forgetting check: the shipped retention set, its comparison with the base model's
answers, and the gate rule (over the threshold and worse than production)."""

from pathlib import Path

import pytest

from retrain.dataset import DatasetError
from retrain.retention import DEFAULT_SET, compare_to_base, load_retention
from retrain.settings import RetrainSettings
from tests.utils import REPO


def test_the_shipped_set_is_about_fifty_general_prompts_of_four_kinds() -> None:
    items = load_retention(DEFAULT_SET)
    assert 45 <= len(items) <= 60
    assert {ex.labels[0] for ex in items} == {
        "arithmetic",
        "knowledge",
        "instructions",
        "format",
    }
    assert all(ex.prompt[-1]["role"] == "user" and ex.prompt[-1]["content"] for ex in items)
    assert RetrainSettings().retention_set == DEFAULT_SET


def test_the_script_writes_the_shipped_set(tmp_path: Path) -> None:
    import runpy

    script = runpy.run_path(str(REPO / "scripts" / "make_retention.py"))
    script["main"](tmp_path / "general.jsonl")
    assert (tmp_path / "general.jsonl").read_text() == DEFAULT_SET.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "has no prompts"),
        ('{"id": "a", "messages": []}\n', "not a retention prompt"),
        ("not json\n", "not a retention prompt"),
    ],
)
def test_a_missing_empty_or_broken_set_is_a_clear_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "set.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_retention(path)


def test_an_empty_setting_turns_the_check_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALOOP_RETRAIN_RETENTION_SET", "")
    assert RetrainSettings().retention_set is None


def test_the_drop_is_one_minus_rouge_l_against_the_base_per_side_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "a", "category": "arithmetic", "messages": [{"role": "user", "content": "2+2?"}]}\n'
        '{"id": "b", "category": "format", "messages": [{"role": "user", "content": "Say hi"}]}\n'
    )
    items = load_retention(path)
    answers = {
        "base": ["two plus two is four", "hi"],
        "production": ["two plus two is four", "hi"],
        "candidate": ["thanks for contacting Lumen support", "hi"],
    }
    result = compare_to_base(items, answers, max_drop=0.3)
    assert result.drop == {"production": 0.0, "candidate": 0.5}
    assert result.by_category["arithmetic"] == {"production": 0.0, "candidate": 1.0}
    assert result.rejects and "0.500" in result.reason()


def test_a_candidate_that_forgets_no_more_than_production_passes(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "a", "messages": [{"role": "user", "content": "2+2?"}]}\n')
    items = load_retention(path)
    answers = {"base": ["four"], "production": ["five"], "candidate": ["six"]}
    result = compare_to_base(items, answers, max_drop=0.3)
    assert result.drop == {"production": 1.0, "candidate": 1.0}
    assert not result.rejects
