"""Inter-reviewer agreement: Krippendorff's alpha, for scores and for each label.

Alpha handles any number of reviewers per item and missing reviews; 1 is perfect
agreement, 0 what chance gives, below 0 systematic disagreement.
"""

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable

Distance = Callable[[float, float], float]


def nominal(a: float, b: float) -> float:
    return 0.0 if a == b else 1.0


def interval(a: float, b: float) -> float:
    return (a - b) ** 2


def krippendorff_alpha(units: Iterable[list[float]], distance: Distance = interval) -> float | None:
    """Alpha over units (items), each the list of values its reviewers gave.

    Units with fewer than two values carry no information and are left out; None when
    nothing is left, or when every value is the same (expected disagreement is zero).
    """
    pairs: dict[tuple[float, float], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    pairs[(a, b)] += 1.0 / (m - 1)
    if not pairs:
        return None
    totals: dict[float, float] = defaultdict(float)
    for (a, _), weight in pairs.items():
        totals[a] += weight
    n = sum(totals.values())
    observed = sum(w * distance(a, b) for (a, b), w in pairs.items()) / n
    expected = sum(totals[a] * totals[b] * distance(a, b) for a in totals for b in totals) / (
        n * (n - 1)
    )
    if expected == 0:
        return None
    return 1.0 - observed / expected


def by_unit(rows: Iterable[tuple[Hashable, float]]) -> list[list[float]]:
    """(item, value) rows grouped into units."""
    units: dict[Hashable, list[float]] = defaultdict(list)
    for item, value in rows:
        units[item].append(value)
    return list(units.values())
