"""The preference scenarios' flaw, counted by a program: production's habits hold the
share of flawed answers asked for, and the flaw rate counts presence and absence flaws."""

import pytest

from loraloop.flaws import FLAWED_SCENARIOS, flaw_rate, good_answer, habits, is_flawed, load_flawed


@pytest.mark.parametrize("name", FLAWED_SCENARIOS)
def test_habits_carry_the_share_of_flawed_answers_asked_for(name: str) -> None:
    rows = [r for r in load_flawed(name) if not r["heldout"]]
    examples = habits(rows, 0.7)

    def flawed(share: float) -> int:
        made = habits(rows, share)
        return sum(is_flawed(ex.answer, r["flaw"]) for ex, r in zip(made, rows, strict=True))

    assert 0.6 < flawed(0.7) / len(rows) < 0.8
    assert flawed(0) == 0 and flawed(1) == len(rows)
    assert habits(rows, 0.7) == examples, "seeded: the same habits every run"
    assert [ex.prompt for ex in examples] == [r["messages"][:-1] for r in rows]


def test_flaw_rate_counts_presence_and_absence() -> None:
    support = load_flawed("support_desk")[:4]
    answers = [support[0]["flawed"], good_answer(support[1]), support[2]["flawed"], "Hello."]
    assert flaw_rate(answers, support) == 0.5
    city = load_flawed("city_services")[:2]
    assert flaw_rate(["Fee: EUR 65.", "Fee: EUR 65. Ref: NV-101."], city) == 0.5
    assert flaw_rate([], []) == 0.0
