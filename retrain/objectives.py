"""Which objective a run trains with, and why.

`auto` reads the curated data there is. Pairs (a correction against what it corrected, or a
pairwise choice) are the most direct evidence, so DPO is chosen when there are enough of
them, unless the judged answers outnumber them more than `JUDGED_OVER_PAIRS` to one: a team
with 10,000 thumbs and 40 corrections learns more from the thumbs (KTO). SFT runs first,
and the preference stage goes on training its adapter, whenever there are
`min_examples_first` chat examples, far fewer than SFT alone needs: measured on the flawed
support desk (BENCHMARKS, issue 22), a preference stage alone from the base removes the flaw
but loses the domain (held-out Rouge-L 0.383 for KTO, 0.170 for DPO, against 0.671 for SFT
on 20 corrections then KTO). With no usable preferences, SFT alone, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrain.settings import RetrainSettings

OBJECTIVES = ("sft", "dpo", "kto", "sft+dpo", "sft+kto")
JUDGED_OVER_PAIRS = 3


@dataclass(frozen=True)
class Available:
    """Curated training rows of each kind (before a stage refuses too few)."""

    examples: int = 0
    pairs: int = 0
    desirable: int = 0
    undesirable: int = 0

    @property
    def judged(self) -> int:
        return self.desirable + self.undesirable


@dataclass(frozen=True)
class Choice:
    objective: str  # one of OBJECTIVES
    reason: str

    @property
    def stages(self) -> list[str]:
        return self.objective.split("+")

    def as_dict(self) -> dict[str, str]:
        return {"objective": self.objective, "reason": self.reason}


def choose(requested: str, data: Available, settings: RetrainSettings) -> Choice:
    """The objective to train with: the one asked for, or auto's pick with its reason."""
    have = (
        f"{data.examples} chat examples, {data.pairs} pairs, {data.judged} judged answers "
        f"({data.desirable} desirable, {data.undesirable} undesirable)"
    )
    if requested != "auto":
        if requested not in OBJECTIVES:
            raise ValueError(f"objective must be auto or one of {', '.join(OBJECTIVES)}")
        return Choice(requested, f"asked for {requested}; data: {have}")
    s = settings
    pairs_ok = data.pairs >= s.min_pairs
    judged_ok = (
        data.judged >= s.min_judged and min(data.desirable, data.undesirable) >= s.min_judged_class
    )
    sft_first = data.examples >= s.min_examples_first
    if judged_ok and (not pairs_ok or data.judged > JUDGED_OVER_PAIRS * data.pairs):
        preference = "kto"
        why = f"{data.judged} judged answers" + (
            f", over {JUDGED_OVER_PAIRS}x the {data.pairs} pairs"
            if pairs_ok
            else f"; too few pairs for DPO (need {s.min_pairs})"
        )
    elif pairs_ok:
        why = f"{data.pairs} preference pairs (at least {s.min_pairs})"
        preference = "dpo"
    else:
        return Choice(
            "sft",
            f"auto: too few preferences (pairs need {s.min_pairs}, judged answers "
            f"{s.min_judged} with {s.min_judged_class} of each class); data: {have}",
        )
    if sft_first:
        return Choice(
            f"sft+{preference}",
            f"auto: {why}, after SFT on {data.examples} chat examples; data: {have}",
        )
    return Choice(
        preference,
        f"auto: {why}; too few chat examples for SFT first ({data.examples} of "
        f"{s.min_examples_first}); data: {have}",
    )
