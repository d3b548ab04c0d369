"""The training plan from the data's size, and early stopping's bookkeeping."""

import pytest

from retrain.schedule import EarlyStopping, make_plan, split_validation, validation_size
from retrain.settings import RetrainSettings

DEFAULTS = RetrainSettings()


@pytest.mark.parametrize(
    ("examples", "validation", "at_least_epochs"),
    [(50, 8, 8), (70, 8, 8), (288, 29, 3), (100_000, 256, 0)],
)
def test_defaults_plan_sensibly_from_fifty_to_a_hundred_thousand(
    examples: int, validation: int, at_least_epochs: int
) -> None:
    assert validation_size(examples, DEFAULTS) == validation
    train = examples - validation
    plan = make_plan(train, validation, DEFAULTS)
    assert plan.min_steps <= plan.max_steps <= DEFAULTS.max_steps
    assert plan.max_steps * DEFAULTS.batch_size / train >= at_least_epochs
    assert plan.max_steps * DEFAULTS.batch_size / train <= max(DEFAULTS.max_epochs, 30)
    # several validation losses before the cap, never more than one per few steps
    assert plan.max_steps / plan.eval_every >= plan.patience + 2
    assert DEFAULTS.eval_every_min <= plan.eval_every <= DEFAULTS.eval_every_max


def test_small_data_trains_the_minimum_large_data_stops_at_the_cap() -> None:
    small = make_plan(42, 8, DEFAULTS)
    assert small.max_steps == small.min_steps == DEFAULTS.min_steps  # ~ 20 passes over 42
    large = make_plan(99_744, 256, DEFAULTS)
    assert large.max_steps == DEFAULTS.max_steps and large.eval_every == DEFAULTS.eval_every_max
    fixed = make_plan(100, 0, RetrainSettings(validation_fraction=0, min_steps=0, max_epochs=2))
    assert fixed.eval_every == 0 and fixed.max_steps == 26


def test_validation_split_is_stable_and_never_larger_than_training() -> None:
    keyed = [(f"id{i}", i) for i in range(100)]
    train, held = split_validation(keyed, DEFAULTS)
    assert len(held) == 10 and sorted(train + held) == list(range(100))
    _more_train, more_held = split_validation([*keyed, ("new", 1000)], DEFAULTS)
    assert len(set(held) - set(more_held)) <= 1  # by key hash: a new one does not reshuffle
    assert validation_size(12, DEFAULTS) == 0  # 8 of 12 would leave fewer to train on
    assert validation_size(100, RetrainSettings(validation_fraction=0)) == 0


def test_early_stopping_waits_for_the_minimum_then_counts_patience() -> None:
    plan = make_plan(40, 8, RetrainSettings(min_steps=20, eval_every=5, patience=2))
    stop = EarlyStopping(plan)
    assert [s for s in range(1, 31) if stop.due(s)] == [5, 10, 15, 20, 25, 30]
    assert stop.record(5, 2.0) and stop.record(10, 1.5)
    assert not stop.record(15, 1.6) and not stop.record(20, 1.7)
    assert stop.should_stop(20) and not stop.should_stop(15)
    assert stop.best_step == 10 and "best at step 10" in stop.reason(20)
    restored = EarlyStopping(plan)
    restored.restore(stop.state())
    assert restored.best_step == 10 and restored.should_stop(20)
