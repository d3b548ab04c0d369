"""The LLM judge: the rubric template, both orders, log-probability verdicts, position
bias turned into ties, agreement with reviewers, and its place in the METRICS registry."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain.dataset import Example
from retrain.evaluate import EvaluationError
from retrain.judge import Judge, Pair, load_rubric, verdict
from retrain.metrics import METRICS, Pairwise, means, score, score_items

RUBRIC, _ = load_rubric("judge-pairwise", None, Path(__file__).parents[3] / "prompt_templates")


def answer_of(system: str, letter: str) -> str:
    return system.split(f"Answer {letter}: ")[1].split("\n")[0]


def fair(request: httpx.Request) -> httpx.Response:
    """Prefers the answer that contains the reference; says so through log-probabilities."""
    body = json.loads(request.content)
    system = body["messages"][0]["content"]
    reference = system.split("Reference answer: ")[1].split("\n")[0]
    a_right = reference in answer_of(system, "A")
    top = [
        {"token": " A", "logprob": -0.2 if a_right else -2.0},
        {"token": "B", "logprob": -2.0 if a_right else -0.2},
        {"token": "The", "logprob": -0.1},
    ]
    return httpx.Response(
        200,
        json={
            "choices": [
                {"message": {"content": "The"}, "logprobs": {"content": [{"top_logprobs": top}]}}
            ]
        },
    )


def always_a(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"content": "A, clearly"}}]})


def judge(handler: Any) -> Judge:
    return Judge("http://judge", "base", RUBRIC, transport=httpx.MockTransport(handler))


def test_a_fair_judge_sees_both_orders_and_picks_the_right_answer() -> None:
    pairs = [
        Pair("price?", "It costs $49.", "It costs $49. Thanks!", "It is free."),
        Pair("bulb?", "An E14 bulb.", "A GU10 bulb.", "It takes An E14 bulb."),
    ]
    assert judge(fair).compare(pairs) == [1.0, 0.0]


def test_position_bias_becomes_a_tie() -> None:
    pairs = [Pair("q", "ref", "good", "bad")] * 3
    assert judge(always_a).compare(pairs) == [0.5, 0.5, 0.5]


def test_the_rubric_is_the_prompt_template_with_or_without_reference() -> None:
    with_ref = judge(fair).messages(Pair("Why?", "Because.", "one", "two"), swapped=True)
    system = with_ref[0]["content"]
    assert "Reference answer: Because." in system
    assert "Answer A: two" in system and "Answer B: one" in system
    assert "Reply with one letter only" in system and with_ref[-1]["role"] == "user"
    without = judge(fair).messages(Pair("Why?", "", "one", "two"), swapped=False)[0]["content"]
    assert "There is no reference answer" in without


def test_verdicts_from_logprobs_else_text() -> None:
    logprobs = {
        "choices": [
            {
                "message": {"content": "A"},
                "logprobs": {
                    "content": [
                        {
                            "top_logprobs": [
                                {"token": "a", "logprob": -3.0},
                                {"token": "B", "logprob": -1.0},
                            ]
                        }
                    ]
                },
            }
        ]
    }
    assert verdict(logprobs) == "B"
    assert verdict({"choices": [{"message": {"content": " b) is better"}}]}) == "B"
    assert verdict({"choices": [{"message": {"content": "no idea"}}]}) is None


def test_agreement_with_reviewers() -> None:
    # better answer first: the fair judge agrees where the reference decides, not without one
    pairs = [Pair("q1", "yes", "yes", "no"), Pair("q2", "it is 5", "it is 5", "it is 6")]
    agreement = judge(fair).agreement(pairs)
    assert (agreement.pairs, agreement.agreed, agreement.rate) == (2, 2, 1.0)
    biased = judge(always_a).agreement(pairs)
    assert (biased.agreed, biased.ties, biased.rate) == (0, 2, 0.0)
    assert judge(fair).agreement([]).rate is None


def test_the_judge_is_a_pairwise_metric_of_the_registry() -> None:
    assert isinstance(METRICS["judge"], Pairwise)
    items = [
        Example(
            f"e{i}",
            ({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"answer {i}"}),
            "seed",
        )
        for i in range(4)
    ]
    candidate = [f"answer {i}" for i in range(4)]
    production = ["answer 0", "wrong", "wrong", "wrong"]
    scores = score_items(["judge", "exact_match"], items, candidate, production, judge(fair))
    cand, prod = means(scores)
    assert scores["judge"][0] == [0.5, 1.0, 1.0, 1.0]  # item 0: the same text, a tie
    assert cand["judge"] == pytest.approx(0.875) and prod["judge"] == pytest.approx(0.125)
    assert cand["exact_match"] == 1.0 and prod["exact_match"] == 0.25
    with pytest.raises(ValueError, match="needs a judge"):
        score_items(["judge"], items, candidate, production)
    with pytest.raises(ValueError, match="compares two answers"):
        score(candidate, production, ["judge"])


def test_a_judge_that_fails_is_an_evaluation_error() -> None:
    down = judge(lambda r: httpx.Response(503, text="overloaded"))
    with pytest.raises(EvaluationError, match="judge http://judge answered 503"):
        down.compare([Pair("q", "r", "a", "b")])
