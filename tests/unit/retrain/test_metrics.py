import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.gate import decide
from retrain.metrics import METRICS, exact_match, lcs_length, rouge_l, score, token_f1, tokens


def test_rouge_l_follows_the_longest_common_subsequence() -> None:
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == 3
    # 4 tokens each after normalisation ("the" dropped), LCS "reset password now" = 3
    assert rouge_l("Reset the password now, please", "Please reset password now") == pytest.approx(
        2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)
    )
    assert rouge_l("totally different", "reset password") == 0.0
    assert rouge_l("", "") == 0.0, "no words match nothing (rouge-score says the same)"
    assert rouge_l("?!", "…") == 0.0
    assert token_f1("", "") == 1.0 and exact_match("", "") == 1.0, "SQuAD's convention"


TYPOGRAPHIC = {"'": "\u2019", '"': "\u201c", "-": "\u2014", "...": "\u2026"}
PIECES = [
    "don't", "it's", '"hello"', "wait...", "yes - no", "The", "a", "refund", "Paris", "is",
    "ok", "é", "naïve", "x_y", "(paren)", "1,000", "50%", "#tag", "«quoted»", "¿qué?", "",
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=25).map(" ".join)


class OurTokens:
    """rouge-score's tokenizer interface over our normalisation: same tokens, its LCS."""

    def tokenize(self, text: str) -> list[str]:
        return tokens(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(prediction=texts, reference=texts)
def test_rouge_l_agrees_with_rouge_score_on_the_same_tokens(
    prediction: str, reference: str
) -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=OurTokens())
    expected = scorer.score(reference, prediction)["rougeL"].fmeasure
    assert rouge_l(prediction, reference) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(prediction=texts, reference=texts)
def test_typographic_punctuation_does_not_move_any_score(prediction: str, reference: str) -> None:
    curly = prediction
    for plain, fancy in TYPOGRAPHIC.items():
        curly = curly.replace(plain, fancy)
    for metric in (rouge_l, token_f1, exact_match):
        assert metric(curly, reference) == metric(prediction, reference)


def test_ascii_texts_tokenise_as_before() -> None:
    """On ASCII the Unicode-wide rule removes exactly what string.punctuation removed."""
    import re
    import string

    before = re.compile(f"[{re.escape(string.punctuation)}]")
    for text in ["Don't stop: it's 5 p.m. (UTC)!", "a_b-c/d\\e|f~g`h", "email@x.io #1 $2 ^3"]:
        old = [t for t in before.sub(" ", text.lower()).split() if t not in {"a", "an", "the"}]
        assert tokens(text) == old


def test_token_f1_and_exact_match_normalise_case_punctuation_and_articles() -> None:
    assert exact_match("The refund is sent.", "refund is sent") == 1.0
    assert exact_match("refund sent", "refund is sent") == 0.0
    assert token_f1("refund sent", "refund is sent") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert token_f1("", "refund") == 0.0


def test_score_means_and_rejects_unknown_metrics() -> None:
    means = score(["a b", "c"], ["a b", "d"], ["exact_match", "token_f1"])
    assert means == {"exact_match": 0.5, "token_f1": 0.5}
    with pytest.raises(ValueError, match="unknown metric"):
        score(["a"], ["a"], ["bleu"])
    with pytest.raises(ValueError, match="as many predictions"):
        score(["a"], [], ["rouge_l"])


def test_metrics_are_pluggable() -> None:
    METRICS["length_ratio"] = lambda p, r: min(len(p), len(r)) / max(len(p), len(r), 1)
    try:
        assert score(["ab"], ["abcd"], ["length_ratio"]) == {"length_ratio": 0.5}
    finally:
        del METRICS["length_ratio"]


def test_gate_needs_the_margin_and_no_regression_beyond_tolerance() -> None:
    prod = {"rouge_l": 0.30, "token_f1": 0.40, "exact_match": 0.10}
    win = decide(
        {"rouge_l": 0.36, "token_f1": 0.39, "exact_match": 0.10}, prod, "rouge_l", 0.05, 0.02
    )
    assert win.promote and win.gain == pytest.approx(0.06)
    small = decide({**prod, "rouge_l": 0.32}, prod, "rouge_l", 0.05, 0.02)
    assert not small.promote and "below the margin" in small.reasons[0]
    regress = decide(
        {"rouge_l": 0.50, "token_f1": 0.30, "exact_match": 0.10}, prod, "rouge_l", 0.05, 0.02
    )
    assert not regress.promote
    assert any("token_f1 regresses by 0.1000" in r for r in regress.reasons)
    with pytest.raises(ValueError, match="primary metric"):
        decide({"token_f1": 1.0}, prod, "rouge_l", 0.0, 0.0)
