"""Adapter, prompt or production: the decision reads the gate and the prompting arms."""

import pytest

from retrain.decision import decide_artifact, decision_table


def test_the_adapter_ships_when_it_beats_production_and_every_prompt() -> None:
    verdict = decide_artifact("rouge_l", 0.01, 0.30, 0.50, {"fixed": 0.35, "retrieved": 0.42}, True)
    assert verdict.ship == "adapter" and verdict.arm is None
    assert "0.500" in verdict.reason and "retrieved" in verdict.reason


def test_a_prompt_ships_when_it_does_as_well_as_the_adapter() -> None:
    verdict = decide_artifact(
        "rouge_l", 0.01, 0.30, 0.50, {"fixed": 0.35, "retrieved": 0.495}, True, {"retrieved": 310}
    )
    assert (verdict.ship, verdict.arm) == ("prompt", "retrieved")
    assert "within the margin" in verdict.reason and "310 more prompt tokens" in verdict.reason


def test_only_a_prompt_a_template_can_carry_is_chosen() -> None:
    arms = {"fixed": 0.495, "retrieved": 0.60}
    verdict = decide_artifact("rouge_l", 0.01, 0.30, 0.50, arms, True, shippable=("fixed",))
    assert (verdict.ship, verdict.arm) == ("prompt", "fixed")
    assert "the retrieved prompt reached 0.600, but a template cannot carry it" in verdict.reason
    arms = {"fixed": 0.31, "retrieved": 0.60}
    verdict = decide_artifact("rouge_l", 0.01, 0.30, 0.50, arms, True, shippable=("fixed",))
    assert verdict.ship == "adapter" and "a template cannot carry it" in verdict.reason


def test_a_prompt_ships_when_the_adapter_failed_the_gate() -> None:
    verdict = decide_artifact("rouge_l", 0.01, 0.30, 0.20, {"fixed": 0.40}, False)
    assert (verdict.ship, verdict.arm) == ("prompt", "fixed")
    assert "did not pass the gate" in verdict.reason


@pytest.mark.parametrize(
    ("candidate", "arms", "passes"),
    [
        (0.20, {"fixed": 0.305}, False),  # nothing clears the margin
        (0.20, {}, False),  # no arms, a rejected adapter
    ],
)
def test_production_stays_when_nothing_beats_it_by_the_margin(
    candidate: float, arms: dict[str, float], passes: bool
) -> None:
    verdict = decide_artifact("rouge_l", 0.01, 0.30, candidate, arms, passes)
    assert verdict.ship == "production"
    assert "keep production" in verdict.reason


def test_an_adapter_that_beats_production_ships_when_no_prompt_beats_production() -> None:
    # the prompt is within the margin of the adapter, but not a margin above production
    verdict = decide_artifact("rouge_l", 0.01, 0.30, 0.31, {"fixed": 0.305}, True)
    assert verdict.ship == "adapter"


def test_the_table_has_one_column_per_side_and_the_costs() -> None:
    record = {
        "gate": {"primary": "rouge_l"},
        "arms": {
            "sides": ["production", "candidate", "fixed", "retrieved"],
            "cost": {
                "production": {"prompt_tokens": 20, "seconds": 0.1},
                "candidate": {"prompt_tokens": 20, "seconds": 0.1},
                "fixed": {"prompt_tokens": 180, "seconds": 0.2},
                "retrieved": {"prompt_tokens": 170, "seconds": 0.2},
            },
        },
        "evaluations": [
            {
                "name": "held_out",
                "size": 9,
                "candidate": {"rouge_l": 0.5},
                "production": {"rouge_l": 0.3},
                "arms": {"fixed": {"rouge_l": 0.35}, "retrieved": {"rouge_l": 0.4}},
            }
        ],
        "retention": {"items": 50, "drop": {"production": 0.0, "candidate": 0.41}},
    }
    head, rows = decision_table(record)
    assert head == ["", "production", "adapter", "fixed prompt", "retrieved prompt"]
    assert rows[0] == ["rouge_l, held_out (9)", "0.300", "0.500", "0.350", "0.400"]
    assert rows[1][1:] == ["0.000", "0.410", "0.000", "0.000"]
    assert rows[2][1:] == ["20", "20", "180", "170"]
