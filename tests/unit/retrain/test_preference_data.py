"""Preference files and their curation: clear errors for bad rows, PII scrubbed, duplicates
and prompts near the gate's dropped, one prompt's rows on one side of the split, refusals
with how many more are needed; and how `auto` picks an objective."""

import json
from pathlib import Path

import pytest

from retrain.dataset import DatasetError
from retrain.objectives import Available, choose
from retrain.preference_data import (
    JudgedAnswer,
    PreferencePair,
    curate_preferences,
    read_preferences,
)
from retrain.settings import RetrainSettings

SETTINGS = RetrainSettings(min_pairs=5, min_judged=8, min_judged_class=3, eval_fraction=0.2)


def pairs(n: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            f"p{i}",
            ({"role": "user", "content": f"question number {i} about topic {i * 13}"},),
            f"good answer {i}",
            f"bad answer {i}, mail bob@example.com",
            "correction" if i % 2 else "pairwise",
        )
        for i in range(n)
    ]


def judged(desirable: int, undesirable: int) -> list[JudgedAnswer]:
    return [
        JudgedAnswer(f"j{i}", ({"role": "user", "content": f"ask {i} about item {i * 7}"},),
                     f"answer {i}", i < desirable, "end_user")
        for i in range(desirable + undesirable)
    ]  # fmt: skip


def write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_file_of_pairs_and_judged_answers_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"prompt": [{"role": "user", "content": "hi"}],
         "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": "Go away."},
        {"prompt": "hours?", "completion": "9 to 5.", "label": True},
    ])  # fmt: skip
    pair, one = read_preferences(path)
    assert pair == PreferencePair(
        "prefs.jsonl:1", ({"role": "user", "content": "hi"},), "Hello!", "Go away.", "prefs.jsonl"
    )
    assert isinstance(one, JudgedAnswer) and one.desirable and one.completion == "9 to 5."
    assert pair.row() == {
        "prompt": [{"role": "user", "content": "hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "q", "chosen": "Same  answer", "rejected": "Same answer"}, "are the same"),
        ({"prompt": "q", "chosen": "a"}, "'rejected' must be a non-empty assistant answer"),
        ({"prompt": "q", "completion": "a", "label": "yes"}, "'label' must be true"),
        ({"prompt": [], "completion": "a", "label": True}, "'prompt' must be a list"),
        ({"prompt": [{"role": "bot", "content": "q"}], "completion": "a", "label": True}, "role"),
        ({"prompt": "q", "answer": "a"}, "needs 'chosen' and 'rejected'"),
        ("just text", "must be a JSON object"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    with pytest.raises(DatasetError, match=message) as caught:
        read_preferences(write(tmp_path, [good, row]))
    assert "prefs.jsonl:2" in str(caught.value)
    with pytest.raises(DatasetError, match="does not exist"):
        read_preferences(tmp_path / "missing.jsonl")


def test_curation_scrubs_dedupes_drops_leaks_and_splits_by_prompt() -> None:
    items = pairs(40)
    items.append(items[3])  # an exact duplicate
    gate = ["question number 7 about topic 91"]  # a held-out prompt: pair 7 must go
    curated = curate_preferences(items, SETTINGS, gate)
    report = curated.report
    assert report["dropped_exact_duplicates"] == 1 and report["dropped_gate_leaks"] == 1
    assert report["pii_scrubbed"] == {"EMAIL": 41}
    assert report["train"] + report["eval"] == 39 and report["eval"] > 0
    assert report["by_source"] == {"correction": 21, "pairwise": 20}  # as given
    kept = curated.train + curated.eval
    assert "p7" not in {p.id for p in kept}
    assert all("[EMAIL]" in p.rejected for p in kept if isinstance(p, PreferencePair))
    again = curate_preferences(list(reversed(items)), SETTINGS, gate)
    assert {p.id for p in again.eval} == {p.id for p in curated.eval}, "stable split"

    fix = JudgedAnswer("fix", judged(1, 0)[0].prompt, "a better answer", True, "correction")
    answers = [*judged(20, 20), fix]
    split = curate_preferences(answers, SETTINGS, [])
    side = {json.dumps(a.prompt): "train" for a in split.train}
    assert not any(json.dumps(a.prompt) in side for a in split.eval), "a prompt's rows together"
    assert split.report["balance"]["desirable"] + split.report["balance"]["undesirable"] == len(
        split.train
    )


def test_too_little_or_one_sided_data_is_refused_with_what_is_missing() -> None:
    with pytest.raises(DatasetError, match=r"only \d preference pairs .* more pairs"):
        curate_preferences(pairs(4), SETTINGS, [])
    with pytest.raises(DatasetError, match=r"every judged answer is desirable .* undesirable"):
        curate_preferences(judged(30, 0), SETTINGS, [])
    with pytest.raises(DatasetError, match=r"\d+ more undesirable judged answers are needed"):
        curate_preferences(judged(40, 10), SETTINGS.model_copy(update={"min_judged_class": 20}), [])
    with pytest.raises(DatasetError, match="trained separately"):
        curate_preferences([*pairs(10), *judged(10, 10)], SETTINGS, [])


@pytest.mark.parametrize(
    ("data", "picked"),
    [
        (Available(examples=60, pairs=30), "sft+dpo"),
        (Available(examples=10, pairs=30), "sft+dpo"),
        (Available(examples=9, pairs=30), "dpo"),
        (Available(examples=20, desirable=300, undesirable=200), "sft+kto"),
        (Available(examples=60, pairs=30, desirable=300, undesirable=200), "sft+kto"),
        (Available(examples=60, pairs=30, desirable=40, undesirable=40), "sft+dpo"),
        (Available(examples=0, pairs=2, desirable=40, undesirable=40), "kto"),
        (Available(examples=60, pairs=2, desirable=400, undesirable=2), "sft"),
        (Available(examples=60), "sft"),
    ],
)
def test_auto_picks_from_the_data_and_says_why(data: Available, picked: str) -> None:
    settings = RetrainSettings(min_pairs=20, min_judged=40, min_judged_class=10)
    choice = choose("auto", data, settings)
    assert choice.objective == picked
    assert choice.reason.startswith("auto: ") and f"{data.pairs} pairs" in choice.reason
    assert choose("kto", data, settings).objective == "kto", "asked for: no second guessing"
    with pytest.raises(ValueError, match="objective must be auto or one of"):
        choose("ppo", data, settings)
