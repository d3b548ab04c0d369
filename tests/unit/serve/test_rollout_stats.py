"""The statistics a rollout step is judged on, and the step verdict built from them."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.live import Traffic
from serve.rollouts import judge
from serve.rollouts.stats import (
    compare_means,
    compare_p95,
    compare_rates,
    compare_win_rate,
    fisher_greater,
    percentile,
)

POLICY = {
    "min_requests": 50,
    "min_ratings": 20,
    "min_reviews": 10,
    "alpha": 0.05,
    "latency_tolerance": 0.25,
    "latency_slack_ms": 100,
    "max_step_s": 3600,
}


def test_percentile() -> None:
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
    from serve.rollouts.stats import compare_win_rate

    assert compare_win_rate(2, 18, 0.05, 10).outcome == "worse"
    assert compare_win_rate(9, 11, 0.05, 10).outcome == "ok"
    assert compare_win_rate(1, 2, 0.05, 10).outcome == "no_data"
    production = traffic(500, rated=200, down=10)
    canary = traffic(60, rated=40, down=2)
    lost = judge(canary, production, POLICY, 0, pairs=(1, 15))
    assert lost.outcome == "fail" and "pairwise_win_rate worse" in lost.reason
    assert judge(canary, production, POLICY, 0, pairs=(8, 7)).outcome == "pass"


# --- the libraries as oracles, and calibration under uneven traffic ---

ALPHA_SHARE = 0.05 / 4  # the default alpha split over a step's four tested metrics
SIMULATIONS = 20_000


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    n1=st.integers(1, 400),
    n2=st.integers(1, 4000),
    r1=st.floats(0, 1),
    r2=st.floats(0, 1),
)
def test_rate_p_values_are_scipys_fisher_exact(n1: int, n2: int, r1: float, r2: float) -> None:
    from scipy.stats import fisher_exact

    x1, x2 = round(r1 * n1), round(r2 * n2)
    ours = compare_rates("error_rate", (x1, n1), (x2, n2), 0.05, 1)
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    expected = fisher_exact(table, alternative="greater").pvalue
    assert ours.p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("n_canary", "n_production", "rate"),
    [
        (200, 4000, 0.01),  # a first step's requests and errors
        (200, 4000, 0.05),
        (20, 400, 0.1),  # a first step's ratings and thumbs-down
        (20, 400, 0.3),
        (200, 200, 0.05),  # even sizes
    ],
)
def test_rate_false_alarms_stay_within_their_share_of_alpha(
    n_canary: int, n_production: int, rate: float
) -> None:
    """The canary is no different: it may be called worse at most ALPHA_SHARE of the time
    (plus three standard errors of the simulation), however uneven the traffic."""
    rng = np.random.default_rng(7)
    x1 = rng.binomial(n_canary, rate, SIMULATIONS)
    x2 = rng.binomial(n_production, rate, SIMULATIONS)
    alarms = float(np.mean(fisher_greater(x1, n_canary, x2, n_production) < ALPHA_SHARE))
    slack = 3 * (ALPHA_SHARE * (1 - ALPHA_SHARE) / SIMULATIONS) ** 0.5
    assert alarms <= ALPHA_SHARE + slack
    one = compare_rates("error_rate", (int(x1[0]), n_canary), (int(x2[0]), n_production), 0.05, 1)
    assert one.p_value == pytest.approx(float(fisher_greater(x1[0], n_canary, x2[0], n_production)))


@pytest.mark.parametrize(("n_canary", "n_production"), [(10, 200), (10, 10), (30, 300)])
def test_review_score_false_alarms_stay_within_their_share_of_alpha(
    n_canary: int, n_production: int
) -> None:
    """Welch's t-test on 1-5 review scores of one distribution, uneven sizes."""
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(11)
    scores, weights = [1, 2, 3, 4, 5], [0.1, 0.1, 0.1, 0.2, 0.5]
    a = rng.choice(scores, size=(SIMULATIONS, n_canary), p=weights).astype(float)
    b = rng.choice(scores, size=(SIMULATIONS, n_production), p=weights).astype(float)
    with np.errstate(all="ignore"):
        p = ttest_ind(a, b, axis=1, equal_var=False, alternative="less").pvalue
    alarms = float(np.mean(np.nan_to_num(p, nan=1.0) < ALPHA_SHARE))
    assert alarms <= ALPHA_SHARE + 3 * (ALPHA_SHARE / SIMULATIONS) ** 0.5
    for k in range(20):  # ours is scipy's, row by row
        ours = compare_means("review_score", list(a[k]), list(b[k]), 0.05, 2)
        if ours.p_value is not None and not np.isnan(p[k]):
            assert ours.p_value == pytest.approx(float(p[k]))


def test_win_rate_is_scipys_binomial_test_and_never_over_alarms() -> None:
    from scipy.stats import binom, binomtest

    for wins, n in [(3, 20), (10, 20), (0, 12), (40, 100)]:
        ours = compare_win_rate(wins, n - wins, 0.05, 1)
        assert ours.p_value == pytest.approx(binomtest(wins, n, 0.5, alternative="less").pvalue)
    for n in (10, 20, 50, 200):  # exact: the false-alarm rate is at most alpha by construction
        critical = [
            k for k in range(n + 1) if binomtest(k, n, 0.5, alternative="less").pvalue < ALPHA_SHARE
        ]
        assert binom.cdf(max(critical, default=-1), n, 0.5) <= ALPHA_SHARE


def test_degenerate_inputs_are_stated() -> None:
    """Identical constant scores: no evidence either way, so never worse (p = 1); a constant
    canary below a constant production: certain (p = 0). No events on either side: p = 1."""
    same = compare_means("review_score", [4.0] * 12, [4.0] * 30, 0.05, 10)
    assert same.p_value == 1.0 and same.outcome == "ok"
    lower = compare_means("review_score", [3.0] * 12, [4.0] * 30, 0.05, 10)
    assert lower.p_value == 0.0 and lower.outcome == "worse"
    assert compare_rates("error_rate", (0, 200), (0, 4000), 0.05, 1).p_value == 1.0
    all_failed = compare_rates("error_rate", (200, 200), (4000, 4000), 0.05, 1)
    assert all_failed.p_value == 1.0 and all_failed.outcome == "ok"
