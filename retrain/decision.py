"""Adapter, prompt or neither: which artefact a run's evidence says should serve.

An adapter costs training and a serving slot; a prompt with a few examples costs tokens on
every request. So the adapter is the answer only when it beats the best prompting arm by
the gate's margin as well as production; a prompting arm that does as well (within the
margin) and beats production by the margin is the answer instead; otherwise production
stays. The adapter must also have passed the gate (every metric, slice, the preference
evidence and the forgetting check): a prompt cannot forget, so a candidate rejected for
forgetting can still lose to a prompt that helps.
"""

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any, Literal

Ship = Literal["adapter", "prompt", "production"]


@dataclass(frozen=True)
class Verdict:
    ship: Ship
    reason: str  # one sentence, for the report, the CLI and the ops page
    arm: str | None = None  # the prompting arm that won, when ship is "prompt"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_artifact(
    primary: str,
    margin: float,
    production: float,
    candidate: float,
    arms: dict[str, float],
    adapter_passes: bool,
    extra_tokens: dict[str, float] | None = None,
    shippable: Collection[str] | None = None,
) -> Verdict:
    """`production`, `candidate` and each arm's value are means of the primary metric on
    the deciding set; `extra_tokens` is what each arm adds to a request's prompt.
    `shippable` names the arms a template can carry (None: all); the others are reported
    where they did better, never chosen."""
    every = arms
    arms = {k: v for k, v in arms.items() if shippable is None or k in shippable}
    best = max(arms, key=lambda name: arms[name]) if arms else None
    top = max(every, key=lambda name: every[name]) if every else None
    unshipped = (
        f" (the {top} prompt reached {every[top]:.3f}, but a template cannot carry it)"
        if top is not None and top != best
        else ""
    )
    prompt_helps = best is not None and arms[best] - production >= margin
    if adapter_passes and (not prompt_helps or candidate - arms[best or ""] >= margin):
        against = f"; the best prompt ({best}) reached {arms[best]:.3f}" if best is not None else ""
        return Verdict(
            "adapter",
            f"ship the adapter: its {primary} {candidate:.3f} beats production's "
            f"{production:.3f} by the margin {margin}{against}{unshipped}",
        )
    if best is not None and prompt_helps:
        why = (
            f"is within the margin {margin} of the adapter's {candidate:.3f}"
            if adapter_passes
            else f"beats production where the adapter ({candidate:.3f}) did not pass the gate"
        )
        extra = (extra_tokens or {}).get(best, 0.0)
        return Verdict(
            "prompt",
            f"ship a prompt: the {best} few-shot prompt's {primary} {arms[best]:.3f} {why}, "
            f"against production's {production:.3f}, for {extra:.0f} more prompt tokens a "
            f"request{unshipped}",
            best,
        )
    leader = f"; the best prompt ({best}) reached {arms[best]:.3f}" if best is not None else ""
    return Verdict(
        "production",
        f"keep production ({primary} {production:.3f}): the adapter ({candidate:.3f}) did not "
        f"pass the gate and no prompt beats production by the margin {margin}{leader}"
        f"{unshipped}",
    )


SIDE_TITLES = {
    "production": "production",
    "candidate": "adapter",
    "fixed": "fixed prompt",
    "retrieved": "retrieved prompt",
}


def decision_table(record: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The columns the decision read, from a run record: each side's primary metric per
    evaluation set, its retention drop, and what it costs a request."""
    gate = record.get("gate") or {}
    primary = gate.get("primary", "")
    arms = record.get("arms") or {}
    sides = arms.get("sides") or ["production", "candidate"]
    head = [""] + [SIDE_TITLES.get(side, side) for side in sides]
    rows = []
    for ev in record.get("evaluations") or []:
        means = {"candidate": ev["candidate"], "production": ev["production"], **ev["arms"]}
        rows.append(
            [f"{primary}, {ev['name']} ({ev['size']})"]
            + [figure((means.get(side) or {}).get(primary)) for side in sides]
        )
    retention = record.get("retention") or {}
    if retention:
        # A prompting arm is the base model itself: it forgets nothing.
        drop = {"fixed": 0.0, "retrieved": 0.0, **(retention.get("drop") or {})}
        label = f"retention drop ({retention.get('items')} general prompts)"
        rows.append([label] + [figure(drop.get(side)) for side in sides])
    cost = arms.get("cost") or {}
    if cost:
        rows.append(
            ["prompt tokens a request"]
            + [figure((cost.get(s) or {}).get("prompt_tokens"), 0) for s in sides]
        )
        rows.append(
            ["seconds a request"] + [figure((cost.get(s) or {}).get("seconds"), 3) for s in sides]
        )
    return head, rows


def figure(value: Any, digits: int = 3) -> str:
    """A number for a report cell; a dash where it was not measured."""
    return "—" if value is None else f"{float(value):.{digits}f}"
