"""The training plan from the data's size, and the stopping rule on validation curves:
recorded ones from real runs (tests/unit/retrain/curves.json) and shaped ones."""

import itertools
import json
import math
import random
from pathlib import Path

import pytest

from retrain.schedule import (
    DIVERGED,
    FIXED,
    PLATEAU,
    STEP_BUDGET,
    TIME_BUDGET,
    EarlyStopping,
    Plan,
    learning_rate_at,
    make_plan,
    peak_rate,
    split_validation,
    validation_size,
)
from retrain.settings import RetrainSettings

DEFAULTS = RetrainSettings()
CURVES = json.loads((Path(__file__).parent / "curves.json").read_text())


@pytest.mark.parametrize(
    ("examples", "validation", "eval_every", "patience"),
    [(20, 8, 5, 4), (70, 8, 5, 4), (288, 29, 12, 6), (100_000, 256, 96, 5)],
)
def test_defaults_plan_from_twenty_to_a_hundred_thousand(
    examples: int, validation: int, eval_every: int, patience: int
) -> None:
    assert validation_size(examples, DEFAULTS) == validation
    train = examples - validation
    plan = make_plan(train, validation, DEFAULTS)
    assert (plan.eval_every, plan.patience) == (eval_every, patience)
    # the budget is generous: many passes over small data, the step budget on large data
    assert plan.max_steps == min(DEFAULTS.max_steps, math.ceil(train / 8) * DEFAULTS.max_epochs)
    # patience spans at least 20 steps and two passes (tiny validation sets are noisy) ...
    window = plan.patience * plan.eval_every
    assert window >= DEFAULTS.patience_min_steps
    assert window >= min(DEFAULTS.patience_max_steps, 2 * plan.steps_per_epoch)
    # ... and validation costs about a tenth of training: a batch every ~3 steps, at most
    assert plan.eval_every >= 3 * math.ceil(validation / DEFAULTS.batch_size) or (
        plan.eval_every == DEFAULTS.eval_every_min
    )
    assert plan.min_steps == 0 and plan.warmup_steps == DEFAULTS.warmup_steps


def test_without_a_validation_split_the_length_is_fixed_within_the_budget() -> None:
    fixed = make_plan(10, 0, DEFAULTS)
    assert (fixed.eval_every, fixed.patience, fixed.max_steps) == (0, 0, DEFAULTS.fixed_steps)
    one_pass = make_plan(100, 0, RetrainSettings(validation_fraction=0, max_epochs=2))
    assert one_pass.max_steps == 26  # the epoch budget (2 x 13) is below fixed_steps
    stop = EarlyStopping(fixed)
    assert not stop.due(5) and stop.rule(120) == FIXED and "fixed length" in stop.reason(120)


def test_validation_split_is_stable_and_never_larger_than_training() -> None:
    keyed = [(f"id{i}", i) for i in range(100)]
    train, held = split_validation(keyed, DEFAULTS)
    assert len(held) == 10 and sorted(train + held) == list(range(100))
    _more_train, more_held = split_validation([*keyed, ("new", 1000)], DEFAULTS)
    assert len(set(held) - set(more_held)) <= 1  # by key hash: a new one does not reshuffle
    assert validation_size(12, DEFAULTS) == 0  # 8 of 12 would leave fewer to train on
    assert validation_size(100, RetrainSettings(validation_fraction=0)) == 0


def test_examples_sharing_an_answer_validate_together() -> None:
    """A question asked three ways with one answer: all three on one side, never split."""
    keyed = [(f"id{i}", i) for i in range(90)]
    groups = [f"answer {i // 3}" for i in range(90)]
    train, held = split_validation(keyed, DEFAULTS, groups)
    assert 9 <= len(held) <= 11 and sorted(train + held) == list(range(90))
    held_groups = {groups[i] for i in held}
    assert not held_groups & {groups[i] for i in train}, "no answer on both sides"
    assert split_validation(keyed, DEFAULTS, groups) == (train, held), "deterministic"
    assert split_validation(keyed, DEFAULTS, ["one"] * 90) == (list(range(90)), [])
    assert split_validation(keyed, DEFAULTS, [k for k, _ in keyed]) == split_validation(
        keyed, DEFAULTS
    ), "one group per example: the plain split"


def test_warm_up_then_constant() -> None:
    plan = make_plan(62, 8, DEFAULTS)
    rates = [learning_rate_at(step, plan, 1e-3) for step in range(12)]
    assert rates[0] == pytest.approx(1e-4) and rates[4] == pytest.approx(5e-4)
    assert rates[9:] == [1e-3] * 3 and rates == sorted(rates)
    assert learning_rate_at(0, make_plan(62, 8, RetrainSettings(warmup_steps=0)), 1e-3) == 1e-3


def test_the_peak_rate_falls_in_proportion_to_the_data_above_its_reference() -> None:
    assert peak_rate(12, DEFAULTS) == peak_rate(64, DEFAULTS) == DEFAULTS.learning_rate == 1e-3
    assert peak_rate(128, DEFAULTS) == pytest.approx(5e-4)
    assert peak_rate(256, DEFAULTS) == pytest.approx(2.5e-4)
    assert peak_rate(320, DEFAULTS) == pytest.approx(2e-4)
    assert peak_rate(100_000, DEFAULTS) == DEFAULTS.learning_rate_min == 2e-4
    rates = [peak_rate(n, DEFAULTS) for n in range(1, 5000, 37)]
    assert rates == sorted(rates, reverse=True)
    assert peak_rate(10_000, RetrainSettings(learning_rate=1e-4)) == 1e-4  # never raised
    assert peak_rate(10_000, RetrainSettings(learning_rate_examples=0)) == 1e-3
    assert make_plan(235, 26, DEFAULTS).learning_rate == pytest.approx(1e-3 * 64 / 235)


def plan(every: int = 5, patience: int = 4, **settings: float) -> Plan:
    return make_plan(62, 8, RetrainSettings(eval_every=every, patience=patience, **settings))


def run(stop: EarlyStopping, losses: list[float]) -> int:
    """Feed a curve measured every `eval_every` steps; the step training stopped at."""
    every = stop.plan.eval_every
    for i, loss in enumerate(losses, 1):
        stop.record(i * every, loss)
        if stop.should_stop(i * every):
            return i * every
    return len(losses) * every


def test_still_falling_never_stops_and_the_budget_says_so() -> None:
    stop = EarlyStopping(plan())
    losses = [2.0 * 0.97**i for i in range(60)]  # 3 % per measurement, to the end
    assert run(stop, losses) == 300
    assert stop.best_step == 300 and stop.rule(300) == STEP_BUDGET
    assert "still improving" in stop.reason(300)


def test_a_flat_curve_stops_after_patience() -> None:
    stop = EarlyStopping(plan())
    assert run(stop, [1.0] * 20) == 5 * (1 + 4)  # the first sets the level, four more fail
    assert stop.rule(25) == PLATEAU and stop.best_step == 25  # as good as the first, later
    strict = EarlyStopping(plan(keep_tolerance=0))
    assert run(strict, [1.0] * 20) == 25 and strict.best_step == 5
    assert "plateau at step 25" in stop.reason(25) and "less than 1% (or 0.001)" in stop.reason(25)


def test_improvements_below_the_tolerance_do_not_count() -> None:
    stop = EarlyStopping(plan())
    losses = [1.0 * 0.998**i for i in range(20)]  # 0.2 % per measurement: a plateau
    stopped = run(stop, losses)
    assert stopped < 100 and stop.rule(stopped) == PLATEAU
    assert stop.best_step == stopped  # the weights kept are still the lowest raw loss
    strict = EarlyStopping(plan(min_improvement=0, min_delta=0))
    assert run(strict, losses) == 100  # without a tolerance it would never stop


def test_a_loss_sliding_to_zero_plateaus_once_its_drops_are_negligible() -> None:
    """A preference loss once the held-out pairs are separated: -log sigmoid(margin) falls
    10 % a reading for ever, so a relative tolerance alone never sees a plateau."""
    losses = [0.69 * 0.9**i for i in range(200)]
    relative_only = EarlyStopping(plan(min_delta=0))
    assert run(relative_only, losses) == 1000
    stop = EarlyStopping(plan())
    stopped = run(stop, losses)
    assert stop.rule(stopped) == PLATEAU and stop.best_step == stopped
    # it stops once `patience` readings together gain under a thousandth of a nat
    assert 0.0005 < losses[stopped // 5 - 1] < 0.005 and stopped < 400


def test_noise_on_a_falling_curve_does_not_stop_training() -> None:
    """±6 % noise around a curve falling 2 % per measurement: single readings go up
    several times in a row, the smoothed level keeps falling."""
    rng = random.Random(7)
    losses = [1.5 * 0.98**i * (1 + rng.uniform(-0.06, 0.06)) for i in range(60)]
    raw_rises = max_run_of_rises(losses)
    assert raw_rises >= 2  # noisy enough that patience 2 on raw readings would be fooled
    stop = EarlyStopping(plan())
    assert run(stop, losses) == 300
    assert stop.best_step >= 5 * (1 + losses.index(min(losses)))
    assert stop.best_loss <= min(losses) * (1 + stop.plan.keep_tolerance)


def test_noise_on_a_flat_curve_stops_soon_after_the_level_stops_falling() -> None:
    rng = random.Random(3)
    falling = [2.0 * 0.9**i for i in range(15)]
    flat = [falling[-1] * (1 + rng.uniform(-0.05, 0.05)) for _ in range(40)]
    stop = EarlyStopping(plan())
    stopped = run(stop, falling + flat)
    assert 15 * 5 < stopped <= (15 + 4 + 3 + 6) * 5  # patience + smoothing + a little
    assert stop.rule(stopped) == PLATEAU


def test_a_diverging_curve_stops_and_keeps_the_weights_from_before() -> None:
    stop = EarlyStopping(plan())
    losses = [1.0, 0.7, 0.5, 0.45, 0.6, 0.9, 1.5, 3.0, 8.0, 30.0, 100.0]
    stopped = run(stop, losses)
    assert stopped == 45 and stop.best_step == 20 and stop.rule(stopped) == PLATEAU
    nan = EarlyStopping(plan())
    assert run(nan, [1.0, 0.8, math.nan, 0.5]) == 15
    assert nan.rule(15) == DIVERGED and nan.best_step == 10 and "diverged" in nan.reason(15)
    assert nan.curve == [(5, 1.0), (10, 0.8)]


def test_the_floor_and_the_time_budget() -> None:
    floored = EarlyStopping(plan(min_steps=100))
    assert run(floored, [1.0] * 30) == 100 and floored.rule(100) == PLATEAU
    timed = EarlyStopping(plan(max_minutes=2))
    timed.record(5, 1.0)
    assert not timed.should_stop(5, elapsed_s=119) and timed.should_stop(6, elapsed_s=120)
    assert timed.rule(6, 120) == TIME_BUDGET and "time budget of 2 min" in timed.reason(6, 120)
    assert not EarlyStopping(plan(max_minutes=0)).should_stop(6, elapsed_s=10**9)


def train(stop: EarlyStopping, losses: list[float]) -> int:
    """`run`, as the trainer does it: a plateau with rate cuts left cuts the rate."""
    every = stop.plan.eval_every
    for i, loss in enumerate(losses, 1):
        stop.record(i * every, loss)
        if stop.drop_due(i * every):
            stop.drop(i * every)
        elif stop.should_stop(i * every):
            return i * every
    return len(losses) * every


def test_a_plateau_cuts_the_rate_once_before_it_stops() -> None:
    stop = EarlyStopping(plan(lr_drops=1, lr_drop_factor=0.1))
    assert stop.lr_scale() == 1
    assert train(stop, [1.0] * 20) == 45  # cut at 25, then four more readings fail
    assert stop.drops == [25] and stop.lr_scale() == pytest.approx(0.1)
    assert stop.rule(45) == PLATEAU and stop.best_step == 45
    assert "rate cut to 0.1x at step 25" in stop.reason(45)


def test_after_the_cut_a_lower_level_keeps_training_and_moves_the_best() -> None:
    """A constant rate bounces around 1.0; the lower rate settles to 0.8 and training goes
    on while it does."""
    flat = [1.0, 1.02, 0.99, 1.01, 1.0, 1.02, 1.01]
    settling = [0.95, 0.9, 0.86, 0.83, 0.81, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    stop = EarlyStopping(plan(lr_drops=1, lr_drop_factor=0.3))
    stopped = train(stop, flat + settling)
    assert len(stop.drops) == 1 and stop.drops[0] <= 5 * len(flat)
    assert stop.best_step > stop.drops[0] and stop.best_loss == 0.8
    assert stop.rule(stopped) == PLATEAU and stopped > 5 * (len(flat) + 6)


def test_rate_cuts_need_a_validation_split_and_are_off_for_the_rule_alone() -> None:
    assert make_plan(62, 0, RetrainSettings()).lr_drops == 0  # fixed length: nothing to cut on
    assert make_plan(62, 8, RetrainSettings()).lr_drops == 1
    stop = EarlyStopping(plan(lr_drops=0))
    assert train(stop, [1.0] * 20) == 25 and stop.drops == []
    budget = EarlyStopping(plan(lr_drops=1, max_steps=25))
    for step in range(5, 30, 5):
        budget.record(step, 1.0)
    assert budget.plateaued(25) and not budget.drop_due(25)  # nothing left to train at the end


def test_state_survives_a_restart() -> None:
    stop = EarlyStopping(plan())
    run(stop, [1.0, 0.5, 0.51, 0.52])
    stop.drop(20)
    restored = EarlyStopping(stop.plan)
    restored.restore(json.loads(json.dumps(stop.state())))
    assert json.dumps(restored.state()) == json.dumps(stop.state())
    assert run(restored, [0.53, 0.54]) == run(stop, [0.53, 0.54])


@pytest.mark.parametrize("name", sorted(CURVES))
def test_recorded_curves(name: str) -> None:
    """Validation curves recorded from real training runs (bench/small_data.py), replayed
    through today's rule at the plan that run had; `expect` is what the rule must do."""
    case = CURVES[name]
    recorded = make_plan(case["train"], case["validation"], RetrainSettings())
    every = case["eval_every"]
    stop = EarlyStopping(
        Plan(**(recorded.as_dict() | {"eval_every": every, "max_steps": case["steps"]}))
    )
    stopped = case["steps"]
    for step, loss in case["curve"]:
        stop.record(step, loss)
        if stop.should_stop(step):
            stopped = step
            break
    best = min(case["curve"], key=lambda point: point[1])
    if case["expect"] == "runs on":
        assert stopped == case["steps"] and stop.rule(stopped) == STEP_BUDGET
    else:
        assert stopped < case["steps"] and stop.rule(stopped) == PLATEAU
        # it stopped past the lowest reading, and kept it or a later one as good
        tolerance = stop.plan.keep_tolerance
        assert best[0] <= stop.best_step <= stopped and best[0] < stopped
        assert stop.best_loss <= best[1] * (1 + tolerance)
        assert stopped - best[0] <= (recorded.patience + stop.plan.smoothing + 2) * every


def max_run_of_rises(losses: list[float]) -> int:
    longest = current = 0
    for before, after in itertools.pairwise(losses):
        current = current + 1 if after > before else 0
        longest = max(longest, current)
    return longest


def test_a_later_reading_near_the_lowest_keeps_its_weights_when_asked() -> None:
    """keep_tolerance: a reading within that fraction of the lowest is as good on this
    validation set, and trained longer; the lowest still decides what an improvement is."""
    curve = [1.0, 0.60, 0.63, 0.605, 0.70, 0.70, 0.70, 0.70, 0.70]
    strict, near = EarlyStopping(plan(keep_tolerance=0)), EarlyStopping(plan())
    assert near.plan.keep_tolerance == 0.02  # the default
    assert run(strict, curve) == run(near, curve)  # the same stop: only the kept step moves
    assert strict.best_step == 10 and near.best_step == 20
    assert near.best_loss == 0.605 and near.lowest == 0.60
    near_after = EarlyStopping(plan(keep_tolerance=0.02))
    run(near_after, [1.0, 0.60, 0.59, 0.70])  # a new lowest resets what is near
    assert near_after.best_step == 15 and near_after.lowest == 0.59
