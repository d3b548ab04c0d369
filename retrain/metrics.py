"""Answer-quality metrics for the evaluation gate: Rouge-L F-measure, token F1, exact match,
and an LLM judge. Where the reference answer is a tool call, every pointwise metric scores
the exact call instead (`scored`).

A pointwise metric scores one answer against its reference in [0, 1]; a pairwise one (the
judge) sees the candidate's and production's answers together and gives the candidate a
share in [0, 1] per item, production the rest. Per-item scores let the gate look at slices;
it compares means. `METRICS` is the registry: the gate uses an entry when
`LORALOOP_RETRAIN_METRICS` names it.
"""

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from feedback.tool_calls import calls_in
from retrain.dataset import Example
from retrain.judge import Judge, Pair

Metric = Callable[[str, str], float]  # (prediction, reference) -> score in [0, 1]


@dataclass(frozen=True)
class Pairwise:
    """A metric that compares the two answers to each item together."""

    compare: Callable[[Judge, list[Pair]], list[float]]


# Every Unicode punctuation or symbol character, not only ASCII's: models write curly
# quotes, typographic apostrophes, dashes and ellipses all the time, and glued to a word
# (don\u2019t, \u201chello) they made it a different token.
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def tokens(text: str) -> list[str]:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, split on space."""
    text = _PUNCTUATION.sub(" ", text.lower())
    return [t for t in text.split() if t not in {"a", "an", "the"}]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """Rouge-L F-measure (beta = 1) over normalised tokens, as rouge-score computes it.

    Two texts with no tokens score 0, as in rouge-score: an answer with no words matches
    nothing, and a gate that counted "nothing" = "nothing" as perfect would reward a model
    for answering a punctuation-only reference with silence. (Token F1 and exact match keep
    SQuAD's convention, 1 for two empty answers, so each metric agrees with its reference.)"""
    pred, ref = tokens(prediction), tokens(reference)
    common = lcs_length(pred, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, reference: str) -> float:
    """Bag-of-tokens F1, as in SQuAD."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    return float(tokens(prediction) == tokens(reference))


def tool_call_match(prediction: str, reference: str) -> float:
    """1 when the prediction makes exactly the reference's tool calls (function names and
    arguments as data, in order; none when the reference makes none), else 0."""
    return float(calls_in(prediction) == calls_in(reference))


def scored(metric: Metric, prediction: str, reference: str) -> float:
    """A pointwise metric, except where the reference answer is a tool call: there only
    the exact call counts (a call to the wrong function, or with one argument wrong, does
    the wrong thing, however close its text reads)."""
    if calls_in(reference):
        return tool_call_match(prediction, reference)
    return metric(prediction, reference)


def judged(judge: Judge, pairs: list[Pair]) -> list[float]:
    return judge.compare(pairs)


METRICS: dict[str, Metric | Pairwise] = {
    "rouge_l": rouge_l,
    "token_f1": token_f1,
    "exact_match": exact_match,
    "tool_calls": tool_call_match,
    "judge": Pairwise(judged),
}
Scores = dict[str, tuple[list[float], list[float]]]  # metric -> (candidate, production)


def check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")


def score(
    predictions: Sequence[str], references: Sequence[str], names: Sequence[str]
) -> dict[str, float]:
    """Mean of each named pointwise metric over the pairs."""
    check_names(names)
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need as many predictions as references, at least one")
    means = {}
    for name in names:
        metric = METRICS[name]
        if isinstance(metric, Pairwise):
            raise ValueError(f"{name} compares two answers; use score_items")
        pairs = zip(predictions, references, strict=True)
        means[name] = sum(scored(metric, p, r) for p, r in pairs) / len(predictions)
    return means


def score_items(
    names: Sequence[str],
    examples: Sequence[Example],
    candidate: Sequence[str],
    production: Sequence[str],
    judge: Judge | None = None,
) -> Scores:
    """Per-item scores of both sides for every named metric."""
    check_names(names)
    if not (len(examples) == len(candidate) == len(production)) or not examples:
        raise ValueError("need one candidate and one production answer per example")
    scores: Scores = {}
    for name in names:
        metric = METRICS[name]
        if isinstance(metric, Pairwise):
            if judge is None:
                raise ValueError(f"metric {name} needs a judge endpoint")
            pairs = [
                Pair(_question(ex), ex.answer, c, p)
                for ex, c, p in zip(examples, candidate, production, strict=True)
            ]
            shares = metric.compare(judge, pairs)
            scores[name] = (shares, [1 - s for s in shares])
        else:
            refs = [ex.answer for ex in examples]
            scores[name] = (
                [scored(metric, c, r) for c, r in zip(candidate, refs, strict=True)],
                [scored(metric, p, r) for p, r in zip(production, refs, strict=True)],
            )
    return scores


def means(scores: Scores) -> tuple[dict[str, float], dict[str, float]]:
    """(candidate, production) means of per-item scores."""
    return (
        {k: sum(c) / len(c) for k, (c, _) in scores.items()},
        {k: sum(p) / len(p) for k, (_, p) in scores.items()},
    )


def _question(example: Example) -> str:
    users = [m["content"] for m in example.prompt if m["role"] == "user"]
    return users[-1] if users else ""
