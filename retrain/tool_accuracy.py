"""How well answers make a scenario's tool calls: the numbers an agent's team reads.

Over the references that are tool calls: the share of answers making exactly the calls
(function names and arguments as data, in order), the share calling the right functions
whatever the arguments, and how many of the calls made validate against the declared
tool's JSON schema; Rouge-L where the reference is text. The gate itself scores calls by
exact match (`retrain.metrics`); these are the finer numbers of the demo and the bench.
"""

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from feedback.tool_calls import call_problem, calls_in
from retrain.dataset import Example
from retrain.metrics import rouge_l


@dataclass(frozen=True)
class ToolAccuracy:
    calls_wanted: int  # references that are tool calls
    exact_calls: float  # share of those answered with exactly the reference's calls
    right_function: float  # share calling the reference's functions, arguments aside
    answers_with_calls: int
    calls_made: int
    valid_calls: int  # calls made whose arguments validate against the tool's schema
    text_rouge_l: float | None  # mean over the references answered in text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tool_accuracy(answers: Sequence[str], references: Sequence[Example]) -> ToolAccuracy:
    """`answers[i]` (text with its calls in canonical form, `feedback.tool_calls.answer_text`)
    against `references[i]`, whose declared tools validate the calls made."""
    pairs = list(zip(answers, references, strict=True))
    wanted = [(calls_in(a), calls_in(ex.answer)) for a, ex in pairs if calls_in(ex.answer)]
    made = [(calls_in(a), ex) for a, ex in pairs if calls_in(a)]
    valid = sum(
        call_problem({"function": {"name": name, "arguments": json.dumps(args)}}, list(ex.tools))
        is None
        for calls, ex in made
        for name, args in calls
    )
    texts = [rouge_l(a, ex.answer) for a, ex in pairs if not calls_in(ex.answer)]
    share = len(wanted) or 1
    return ToolAccuracy(
        calls_wanted=len(wanted),
        exact_calls=sum(got == want for got, want in wanted) / share,
        right_function=sum([n for n, _ in got] == [n for n, _ in want] for got, want in wanted)
        / share,
        answers_with_calls=len(made),
        calls_made=sum(len(calls) for calls, _ in made),
        valid_calls=valid,
        text_rouge_l=statistics.mean(texts) if texts else None,
    )
