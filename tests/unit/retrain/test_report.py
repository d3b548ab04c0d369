"""The run report: both loss curves and the kept step in the picture; the plan, the
search's trials, every evaluation set, slices and the judge's agreement on the page."""

from pathlib import Path

from retrain.gate import SliceResult, decide
from retrain.pipeline import RunOutcome, SetScores
from retrain.report import loss_curve_svg, write_report


def test_curves_mark_the_validation_points_and_the_kept_step() -> None:
    svg = loss_curve_svg([3.0, 2.0, 1.5, 1.2, 1.1, 1.0], [(3, 1.8), (6, 1.9)], best_step=3)
    assert svg.count("<circle") == 2 and "kept: step 3" in svg and "validation loss" in svg
    plain = loss_curve_svg([3.0, 2.0])
    assert "<circle" not in plain and "kept" not in plain


def test_the_report_shows_what_the_run_decided_and_why(tmp_path: Path) -> None:
    part = SliceResult("label", "price", 6, {"rouge_l": 0.5}, {"rouge_l": 0.7}, True)
    run = RunOutcome(
        "r1",
        "support",
        "base",
        tmp_path,
        outcome="rejected",
        losses=[2.0, 1.5, 1.2, 1.0],
        validation=[(2, 1.4), (4, 1.3)],
        trials=[
            {
                "params": {"learning_rate": 1e-4},
                "best_validation_loss": 1.3,
                "best_step": 4,
                "steps": 4,
            }
        ],
        evaluations=[
            SetScores("held_out", 7, {"rouge_l": 0.8}, {"rouge_l": 0.3}),
            SetScores("golden", 12, {"rouge_l": 0.6}, {"rouge_l": 0.55}),
        ],
        golden={"items": 12, "hash": "ab" * 32},
        judge={
            "model": "base",
            "url": "http://e",
            "rubric": "judge-pairwise@1",
            "human_agreement": {"pairs": 10, "agreed": 6, "ties": 3, "rate": 0.6},
        },
        train={
            "plan": {
                "max_steps": 120,
                "min_steps": 120,
                "train_examples": 54,
                "validation_examples": 8,
                "eval_every": 7,
                "patience": 3,
            },
            "stop_reason": "early stop at step 4",
            "steps": 4,
            "best_step": 4,
            "best_validation_loss": 1.3,
        },
        gate=decide({"rouge_l": 0.6}, {"rouge_l": 0.55}, "rouge_l", 0.01, 0.02, "golden", [part]),
    )
    page = write_report(tmp_path, run.as_record()).read_text()
    for words in (
        "early stop at step 4",
        "at most 120 (at least 120)",
        "54 training and 8 validation examples",
        "{&quot;learning_rate&quot;: 0.0001}",
        "golden (12 items) — the gate decides on this set",
        "held_out (7 items)",
        "Golden set: 12 items, sha256 abababab",
        "label=price",
        "slice label=price (6 items): rouge_l regresses by 0.2000",
        "6 of 10 human-ordered pairs (60%; 3 ties)",
    ):
        assert words in page, words
    assert "kept: step 4" in (tmp_path / "loss.svg").read_text()
