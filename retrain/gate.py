"""The promotion gate: a candidate replaces production only when it is clearly better.

It must beat production on the primary metric by at least `margin`, lose no more than
`tolerance` on any other metric, and lose no more than `slice_tolerance` on any metric in
any slice (template, label) large enough to count. It decides on the alias's golden set
when there is one, else on the run's held-out split. Every number and the reasons are kept
with the decision.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from retrain.dataset import Example
from retrain.metrics import Scores


@dataclass(frozen=True)
class SliceResult:
    kind: str  # template, label
    value: str
    size: int
    candidate: dict[str, float]
    production: dict[str, float]
    counted: bool  # large enough to reject a candidate


def slices(examples: Sequence[Example], scores: Scores, min_size: int) -> list[SliceResult]:
    """Means per template and per label; an example with two labels is in both."""
    members: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        members[("template", ex.template or "none")].append(i)
        for label in ex.labels:
            members[("label", label)].append(i)
    results = []
    for (kind, value), idx in sorted(members.items()):
        cand = {k: sum(c[i] for i in idx) / len(idx) for k, (c, _) in scores.items()}
        prod = {k: sum(p[i] for i in idx) / len(idx) for k, (_, p) in scores.items()}
        results.append(SliceResult(kind, value, len(idx), cand, prod, len(idx) >= min_size))
    return results


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    primary: str
    candidate: dict[str, float]
    production: dict[str, float]
    margin: float
    tolerance: float
    reasons: list[str] = field(default_factory=list)
    eval_set: str = "held_out"  # or "golden"
    slices: list[SliceResult] = field(default_factory=list)
    slice_tolerance: float = 0.0

    @property
    def gain(self) -> float:
        return self.candidate[self.primary] - self.production[self.primary]


def decide(
    candidate: dict[str, float],
    production: dict[str, float],
    primary: str,
    margin: float,
    tolerance: float,
    eval_set: str = "held_out",
    by_slice: Sequence[SliceResult] = (),
    slice_tolerance: float = 0.05,
) -> GateDecision:
    if primary not in candidate or primary not in production:
        raise ValueError(f"primary metric {primary!r} was not measured")
    reasons: list[str] = []
    gain = candidate[primary] - production[primary]
    if gain < margin:
        reasons.append(f"{primary} gain {gain:+.4f} is below the margin {margin}")
    for name in sorted(candidate.keys() & production.keys() - {primary}):
        drop = production[name] - candidate[name]
        if drop > tolerance:
            reasons.append(f"{name} regresses by {drop:.4f} (tolerance {tolerance})")
    for part in by_slice:
        if not part.counted:
            continue
        for name in sorted(part.candidate.keys() & part.production.keys()):
            drop = part.production[name] - part.candidate[name]
            if drop > slice_tolerance:
                reasons.append(
                    f"slice {part.kind}={part.value} ({part.size} items): {name} regresses "
                    f"by {drop:.4f} (slice tolerance {slice_tolerance})"
                )
    passed = not reasons
    if passed:
        reasons.append(
            f"{primary} gain {gain:+.4f} >= margin {margin} on the {eval_set} set; "
            "nothing regresses"
        )
    return GateDecision(
        promote=passed,
        primary=primary,
        candidate=dict(candidate),
        production=dict(production),
        margin=margin,
        tolerance=tolerance,
        reasons=reasons,
        eval_set=eval_set,
        slices=list(by_slice),
        slice_tolerance=slice_tolerance,
    )
