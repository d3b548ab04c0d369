"""Answer-quality metrics for the evaluation gate: Rouge-L F-measure, token F1, exact match.

Each metric scores one answer against its reference in [0, 1]; the gate compares means.
`METRICS` is the registry: add an entry (an LLM judge, say) and the gate uses it when
`LORALOOP_RETRAIN_METRICS` names it.
"""

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

Metric = Callable[[str, str], float]  # (prediction, reference) -> score in [0, 1]

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


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
    """Rouge-L F-measure (beta = 1) over normalised tokens."""
    pred, ref = tokens(prediction), tokens(reference)
    common = lcs_length(pred, ref)
    if common == 0:
        return float(not pred and not ref)
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


METRICS: dict[str, Metric] = {
    "rouge_l": rouge_l,
    "token_f1": token_f1,
    "exact_match": exact_match,
}


def score(
    predictions: Sequence[str], references: Sequence[str], names: Sequence[str]
) -> dict[str, float]:
    """Mean of each named metric over the pairs."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need as many predictions as references, at least one")
    return {
        name: sum(METRICS[name](p, r) for p, r in zip(predictions, references, strict=True))
        / len(predictions)
        for name in names
    }
