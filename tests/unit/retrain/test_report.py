"""The run report: both loss curves and the kept step in the picture; the plan, the
search's trials, every evaluation set, slices and the judge's agreement on the page."""

from pathlib import Path

from retrain.gate import SliceResult, decide
from retrain.outcome import RunOutcome, SetScores
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
                "max_steps": 800,
                "max_minutes": 240,
                "min_steps": 0,
                "train_examples": 54,
                "validation_examples": 8,
                "eval_every": 5,
                "patience": 4,
                "min_improvement": 0.01,
                "smoothing": 3,
                "warmup_steps": 10,
            },
            "stop_rule": "plateau",
            "stop_reason": "plateau at step 4: validation loss improved less than 1%",
            "steps": 4,
            "best_step": 4,
            "best_validation_loss": 1.3,
        },
        gate=decide({"rouge_l": 0.6}, {"rouge_l": 0.55}, "rouge_l", 0.01, 0.02, "golden", [part]),
    )
    page = write_report(tmp_path, run.as_record()).read_text()
    for words in (
        "Training ended: the validation loss stopped improving (plateau).",
        "plateau at step 4: validation loss improved less than 1%",
        "4 steps of a budget of 800 steps or 240 minutes",
        "stopping after 4 without a 1% improvement (average of the last 3)",
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
    budget = run.as_record() | {"train": run.train | {"stop_rule": "step budget"}}
    page = write_report(tmp_path, budget).read_text()
    assert "Training ended: the step budget ran out before the validation loss stopped" in page


def test_a_preference_run_reports_its_objective_stages_and_evidence(tmp_path: Path) -> None:
    record = {
        "run_id": "r2",
        "alias": "support",
        "outcome": "rejected",
        "objective": {"objective": "sft+kto", "reason": "auto: 400 judged answers, over 3x"},
        "stages": [
            {"stage": "sft", "steps": 40, "best_step": 35, "stop_rule": "plateau"},
            {
                "stage": "kto",
                "steps": 30,
                "best_step": 24,
                "stop_rule": "plateau",
                "objective": "kto",
                "validation_at_best": {"rewards/margins": 1.25},
            },
        ],
        "preference": {
            "evidence": {
                "items": 20,
                "candidate_accuracy": 0.8,
                "production_accuracy": 0.45,
                "candidate_margin": 3.5,
                "production_margin": -1.0,
                "won": 0.85,
            }
        },
    }
    page = write_report(tmp_path, record).read_text()
    for words in (
        "Objective: sft+kto</b> — auto: 400 judged answers, over 3x",
        "<td>kto</td><td>30</td><td>24</td><td>plateau</td><td>—</td><td>1.250</td>",
        "<td>preference accuracy</td><td>0.800</td><td>0.450</td>",
        "<td>candidate beats production on</td><td>85%</td>",
    ):
        assert words in page, words
