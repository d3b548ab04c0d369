"""The statistics a rollout step is judged on, and the step verdict built from them."""

import pytest

from feedback.live import Traffic
from serve.rollout_stats import compare_means, compare_p95, compare_rates, normal_sf, percentile
from serve.rollouts import judge

POLICY = {
    "min_requests": 50,
    "min_ratings": 20,
    "min_reviews": 10,
    "alpha": 0.05,
    "latency_tolerance": 0.25,
    "latency_slack_ms": 100,
    "max_step_s": 3600,
}


def test_normal_tail_and_percentile() -> None:
    assert normal_sf(0) == pytest.approx(0.5)
    assert normal_sf(1.6449) == pytest.approx(0.05, abs=1e-4)
    assert percentile(list(range(1, 101)), 0.95) == pytest.approx(95.05)


def test_rates_say_worse_only_on_evidence() -> None:
    clear = compare_rates("thumbs_down_rate", (30, 60), (6, 120), 0.05, 20)
    assert clear.outcome == "worse" and clear.p_value is not None and clear.p_value < 1e-6
    noise = compare_rates("thumbs_down_rate", (3, 30), (6, 120), 0.05, 20)
    assert noise.outcome == "ok", noise.reason  # 10 % vs 5 % on 30 ratings: not evidence
    better = compare_rates("error_rate", (0, 200), (10, 200), 0.05, 20)
    assert better.outcome == "ok"
    assert compare_rates("error_rate", (0, 0), (0, 0), 0.05, 1).outcome == "no_data"
    assert compare_rates("error_rate", (0, 10), (0, 10), 0.05, 1).p_value == 1.0  # no events


def test_latency_and_scores() -> None:
    fast, slow = [100.0] * 50, [100.0] * 40 + [400.0] * 10
    assert compare_p95(slow, fast, 0.25, 10).outcome == "worse"
    assert compare_p95(fast, slow, 0.25, 10).outcome == "ok"
    assert compare_p95(fast[:3], slow, 0.25, 10).outcome == "no_data"
    # 9 ms vs 12 ms is +33 %, and noise: within the absolute slack it is never worse
    assert compare_p95([12.0] * 20, [9.0] * 20, 0.25, 10, slack_ms=100).outcome == "ok"
    assert compare_p95(slow, fast, 0.25, 10, slack_ms=100).outcome == "worse"  # +300 ms
    low, high = [2.0, 3.0] * 15, [4.0, 5.0] * 15
    worse = compare_means("review_score", low, high, 0.05, 10)
    assert worse.outcome == "worse" and worse.test == "Welch's t-test"
    assert compare_means("review_score", high, low, 0.05, 10).outcome == "ok"
    assert compare_means("review_score", [3.0], high, 0.05, 10).outcome == "no_data"


def traffic(requests: int, rated: int = 0, down: int = 0, errors: int = 0) -> Traffic:
    return Traffic(requests, errors, [50.0] * (requests - errors), rated, down, [])


def test_a_step_waits_fails_or_passes() -> None:
    production = traffic(500, rated=200, down=10)
    assert judge(traffic(20, 10, 0), production, POLICY, 0).outcome == "wait"
    waiting = judge(traffic(60, rated=5), production, POLICY, 0)
    assert waiting.outcome == "wait" and "thumbs_down_rate" in waiting.reason
    # past max_step_s the ratings that came are judged, and no more are awaited
    assert judge(traffic(60, rated=5), production, POLICY, 7200).outcome == "pass"
    failed = judge(traffic(60, rated=40, down=20), production, POLICY, 0)
    assert failed.outcome == "fail" and "thumbs_down_rate worse" in failed.reason
    errors = judge(traffic(60, rated=40, down=2, errors=10), production, POLICY, 0)
    assert errors.outcome == "fail" and "error_rate" in errors.reason
    # a clear failure does not wait for the step's request count
    assert judge(traffic(30, rated=30, down=25), production, POLICY, 0).outcome == "fail"
    assert judge(traffic(60, rated=40, down=2), production, POLICY, 0).outcome == "pass"
    unrated = {**POLICY, "min_ratings": 0}
    assert judge(traffic(60), production, unrated, 0).outcome == "pass"


def test_pairwise_reviews_can_fail_a_step() -> None:
    from serve.rollout_stats import compare_win_rate

    assert compare_win_rate(2, 18, 0.05, 10).outcome == "worse"
    assert compare_win_rate(9, 11, 0.05, 10).outcome == "ok"
    assert compare_win_rate(1, 2, 0.05, 10).outcome == "no_data"
    production = traffic(500, rated=200, down=10)
    canary = traffic(60, rated=40, down=2)
    lost = judge(canary, production, POLICY, 0, pairs=(1, 15))
    assert lost.outcome == "fail" and "pairwise_win_rate worse" in lost.reason
    assert judge(canary, production, POLICY, 0, pairs=(8, 7)).outcome == "pass"
