"""The comparisons a rollout step is judged on, canary against production, each with a
stated test. A comparison says `worse` only on evidence: a one-sided test at the
step's significance level, so a canary is never rolled back on noise alone, and the
level is split over the comparisons made (Bonferroni) so more metrics do not mean more
false rollbacks.

- rates (errors, thumbs-down): Fisher's exact test, H1 canary > production. Exact, because
  a first step has far less canary traffic than production (200 vs 4,000 requests, 20 vs
  400 ratings), where the two-proportion z-test raised 1.5-2.7 times its stated false alarms
  (BENCHMARKS.md, `bench/rollout_stats.py`);
- p95 latency: a stated threshold, canary p95 > production p95 x (1 + tolerance) and more
  than `slack_ms` above it;
- mean review score: Welch's t-test, H1 canary < production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from feedback.ops import percentile

Outcome = Literal["ok", "worse", "no_data"]


@dataclass(frozen=True)
class Comparison:
    metric: str
    canary: float | None
    production: float | None
    samples: tuple[int, int]  # canary, production
    test: str
    p_value: float | None
    outcome: Outcome
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fisher_greater(x1: Any, n1: Any, x2: Any, n2: Any) -> Any:
    """One-sided Fisher's exact p-value that the first rate (x1 of n1) is the higher: given
    the x1 + x2 events, the chance that n1 draws hold x1 or more of them (hypergeometric).
    Takes numbers or numpy arrays (the simulations in the tests and bench/ use arrays)."""
    from scipy.stats import hypergeom  # scipy takes a moment to import: on use

    return hypergeom.sf(x1 - 1, n1 + n2, x1 + x2, n1)


def compare_rates(
    metric: str, canary: tuple[int, int], production: tuple[int, int], alpha: float, min_n: int
) -> Comparison:
    """(events, trials) on each side; worse when the canary's rate is higher at `alpha`."""
    (x1, n1), (x2, n2) = canary, production
    test = "Fisher's exact test, one-sided"
    if n1 < max(1, min_n) or n2 < max(1, min_n):
        return Comparison(
            metric, _rate(x1, n1), _rate(x2, n2), (n1, n2), test, None,
            "no_data", f"{n1} canary and {n2} production samples; needs {max(1, min_n)} each",
        )  # fmt: skip
    p1, p2 = x1 / n1, x2 / n2
    p_value = min(1.0, float(fisher_greater(x1, n1, x2, n2)))
    worse = p_value < alpha and p1 > p2
    return Comparison(
        metric, p1, p2, (n1, n2), test, p_value,
        "worse" if worse else "ok",
        f"{p1:.1%} vs {p2:.1%}, one-sided p={p_value:.3g} "
        f"({'<' if worse else '>='} {alpha:.3g})",
    )  # fmt: skip


def compare_p95(
    canary: Sequence[float],
    production: Sequence[float],
    tolerance: float,
    min_n: int,
    slack_ms: float = 0.0,
) -> Comparison:
    """Worse when the canary's p95 is above production's by more than `tolerance` (relative)
    and by more than `slack_ms` (absolute: on fast answers a few ms of noise is a large ratio)."""
    n1, n2 = len(canary), len(production)
    test = f"p95 threshold: canary > production x {1 + tolerance:g} and + {slack_ms:g} ms"
    if n1 < max(1, min_n) or n2 < max(1, min_n):
        return Comparison(
            "p95_latency_ms", None, None, (n1, n2), test, None, "no_data",
            f"{n1} canary and {n2} production latencies; needs {max(1, min_n)} each",
        )  # fmt: skip
    c, p = percentile(canary, 0.95) or 0.0, percentile(production, 0.95) or 0.0
    worse = c > p * (1 + tolerance) and c - p > slack_ms
    return Comparison(
        "p95_latency_ms", c, p, (n1, n2), test, None, "worse" if worse else "ok",
        f"{c:.0f} ms vs {p:.0f} ms ({'above' if worse else 'within'} +{tolerance:.0%})",
    )  # fmt: skip


def compare_means(
    metric: str, canary: Sequence[float], production: Sequence[float], alpha: float, min_n: int
) -> Comparison:
    """Worse when the canary's mean is lower at `alpha` (Welch's t-test, one-sided)."""
    n1, n2 = len(canary), len(production)
    test = "Welch's t-test"
    if n1 < max(2, min_n) or n2 < max(2, min_n):
        return Comparison(
            metric, _mean(canary), _mean(production), (n1, n2), test, None, "no_data",
            f"{n1} canary and {n2} production scores; needs {max(2, min_n)} each",
        )  # fmt: skip
    from scipy.stats import ttest_ind  # scipy takes a moment to import: on use

    m1, m2 = _mean(canary), _mean(production)
    assert m1 is not None and m2 is not None
    if len(set(canary)) == 1 and len(set(production)) == 1:
        p_value = 0.0 if m1 < m2 else 1.0  # no spread: the means say it all
    else:
        p_value = float(ttest_ind(canary, production, equal_var=False, alternative="less").pvalue)
    worse = p_value < alpha and m1 < m2
    return Comparison(
        metric, m1, m2, (n1, n2), test, p_value, "worse" if worse else "ok",
        f"{m1:.2f} vs {m2:.2f}, one-sided p={p_value:.3g} "
        f"({'<' if worse else '>='} {alpha:.3g})",
    )  # fmt: skip


def _rate(events: int, trials: int) -> float | None:
    return events / trials if trials else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare_win_rate(wins: int, losses: int, alpha: float, min_n: int) -> Comparison:
    """Pairwise reviews of canary (shadow) vs production answers, ties left out: worse
    when the canary wins significantly less than half (exact binomial test)."""
    n = wins + losses
    test = "binomial test, H1: win rate < 0.5"
    if n < max(1, min_n):
        return Comparison(
            "pairwise_win_rate", _rate(wins, n), 0.5, (n, n), test, None, "no_data",
            f"{n} decided pairwise reviews; needs {max(1, min_n)}",
        )  # fmt: skip
    from scipy.stats import binomtest  # scipy takes a moment to import: on use

    p_value = float(binomtest(wins, n, 0.5, alternative="less").pvalue)
    worse = p_value < alpha
    return Comparison(
        "pairwise_win_rate", wins / n, 0.5, (n, n), test, p_value, "worse" if worse else "ok",
        f"won {wins} of {n}, one-sided p={p_value:.3g} ({'<' if worse else '>='} {alpha:.3g})",
    )  # fmt: skip
