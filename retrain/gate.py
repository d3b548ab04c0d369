"""The promotion gate: a candidate replaces production only when it is clearly better.

It must beat production on the primary metric by at least `margin` and lose no more than
`tolerance` on any other metric. Every number and the reasons are kept with the decision.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    primary: str
    candidate: dict[str, float]
    production: dict[str, float]
    margin: float
    tolerance: float
    reasons: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float:
        return self.candidate[self.primary] - self.production[self.primary]


def decide(
    candidate: dict[str, float],
    production: dict[str, float],
    primary: str,
    margin: float,
    tolerance: float,
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
    passed = not reasons
    if passed:
        reasons.append(f"{primary} gain {gain:+.4f} >= margin {margin}; nothing regresses")
    return GateDecision(
        promote=passed,
        primary=primary,
        candidate=dict(candidate),
        production=dict(production),
        margin=margin,
        tolerance=tolerance,
        reasons=reasons,
    )
