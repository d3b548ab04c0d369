import pytest

from retrain.gate import decide
from retrain.metrics import METRICS, exact_match, lcs_length, rouge_l, score, token_f1


def test_rouge_l_follows_the_longest_common_subsequence() -> None:
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == 3
    # 4 tokens each after normalisation ("the" dropped), LCS "reset password now" = 3
    assert rouge_l("Reset the password now, please", "Please reset password now") == pytest.approx(
        2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)
    )
    assert rouge_l("totally different", "reset password") == 0.0
    assert rouge_l("", "") == 1.0


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
