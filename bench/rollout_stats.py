"""False alarms of the rollout's rate comparison under uneven traffic: the canary is no
different from production, and the test may still call it worse. Before issue 20 this was
a one-sided two-proportion z-test; now it is Fisher's exact test (serve/rollouts/stats.py).
Both see the same simulated counts here; printed: each one's false-alarm rate against the
share of alpha it is allowed (0.05 split over four metrics), and their ratio.

    .venv/bin/python bench/rollout_stats.py [--simulations 20000]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serve.rollouts.stats import fisher_greater

ALPHA_SHARE = 0.05 / 4
CASES = [  # canary, production trials; the shared true rate
    (200, 4000, 0.01),
    (200, 4000, 0.02),
    (200, 4000, 0.05),
    (20, 400, 0.1),
    (20, 400, 0.2),
    (20, 400, 0.3),
    (200, 200, 0.05),
    (1000, 1000, 0.02),
]


def z_test(x1: np.ndarray, n1: int, x2: np.ndarray, n2: int) -> np.ndarray:
    """The previous test: pooled two-proportion z, one-sided."""
    pooled = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (x1 / n1 - x2 / n2) / se, -np.inf)
    return np.asarray(norm.sf(z))


def power(
    n1: int, n2: int, rate: float, worse: float, runs: int, rng: np.random.Generator
) -> tuple[float, float]:
    x1, x2 = rng.binomial(n1, rate * worse, runs), rng.binomial(n2, rate, runs)
    return (
        float(np.mean(z_test(x1, n1, x2, n2) < ALPHA_SHARE)),
        float(np.mean(fisher_greater(x1, n1, x2, n2) < ALPHA_SHARE)),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--simulations", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"allowed false-alarm rate per metric: {ALPHA_SHARE:.4f}; {args.simulations} runs each")
    print(
        "| canary n | production n | rate | z-test | Fisher | z / allowed | Fisher / allowed "
        "| power z / Fisher (canary 2x) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n1, n2, rate in CASES:
        x1 = rng.binomial(n1, rate, args.simulations)
        x2 = rng.binomial(n2, rate, args.simulations)
        z = float(np.mean(z_test(x1, n1, x2, n2) < ALPHA_SHARE))
        f = float(np.mean(fisher_greater(x1, n1, x2, n2) < ALPHA_SHARE))
        pz, pf = power(n1, n2, rate, 2.0, args.simulations, rng)
        print(
            f"| {n1} | {n2} | {rate:g} | {z:.4f} | {f:.4f} | {z / ALPHA_SHARE:.2f} "
            f"| {f / ALPHA_SHARE:.2f} | {pz:.3f} / {pf:.3f} |"
        )


if __name__ == "__main__":
    main()
