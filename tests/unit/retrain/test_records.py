"""Reading run records by names that come from URLs: nothing outside the runs directory."""

import json
from pathlib import Path

from retrain.records import predictions, read_run, run_dir, run_file, word_diff


def test_names_stay_inside_the_runs_directory(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "support" / "run-1").mkdir(parents=True)
    (runs / "support" / "run-1" / "run.json").write_text(json.dumps({"outcome": "promoted"}))
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "run.json").write_text("{}")
    assert read_run(runs, "support", "run-1") == {"outcome": "promoted"}
    for alias, run in (("..", "secret"), ("support", ".."), ("/etc", "x"), ("support", "a/b")):
        assert run_dir(runs, alias, run) is None
    (runs / "support" / "link").symlink_to(tmp_path / "secret")
    assert run_dir(runs, "support", "link") is None, "a symlink out of the runs directory"
    assert run_file(runs, "support", "run-1", "run.json") is None, "only report.html, loss.svg"
    assert read_run(runs, "support", "missing") is None


def test_predictions_carry_a_word_diff(tmp_path: Path) -> None:
    run = tmp_path / "support" / "run-1"
    run.mkdir(parents=True)
    row = {"set": "held_out", "reference": "costs 40 euros", "production": "costs 40 euros",
           "candidate": "costs 42 euros"}  # fmt: skip
    (run / "eval_predictions.jsonl").write_text(json.dumps(row) + "\nnot json\n")
    [got] = predictions(tmp_path, "support", "run-1")
    assert got["production_diff"] == [("same", "costs 40 euros")]
    assert got["candidate_diff"] == [("same", "costs"), ("missing", "40"), ("added", "42"),
                                     ("same", "euros")]  # fmt: skip
    assert word_diff("", "new words") == [("added", "new words")]
