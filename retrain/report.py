"""A retraining run as people want to see it: the loss curves (SVG: training loss per step,
validation loss where it was measured, the kept step marked) and a one-page HTML report
with the training length chosen, the search's trials, every evaluation set, the slices,
the judge's agreement with reviewers, curation counts and the gate's decision."""

import html
import json
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from retrain.decision import decision_table, figure

WIDTH, HEIGHT, PAD = 640, 220, 36


def loss_curve_svg(
    losses: list[float], validation: Sequence[Sequence[float]] = (), best_step: int = 0
) -> str:
    """Training loss per step with a moving average over ~5 % of the steps; validation
    loss as dots joined by a line; the step whose weights were kept as a dashed line."""
    if not losses:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"/>'
    values = losses + [v for _, v in validation]
    top, low = max(values), min(0.0, min(values))
    span = (top - low) or 1.0
    window = max(1, len(losses) // 20)
    smooth = [fmean(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]
    last = max(1, len(losses) - 1)

    def x(step: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * (step / last)

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((v - low) / span)

    raw = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(losses))
    avg = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(smooth))
    val = " ".join(f"{x(s - 1):.1f},{y(v):.1f}" for s, v in validation)
    dots = "".join(
        f'<circle cx="{x(s - 1):.1f}" cy="{y(v):.1f}" r="2.5" fill="#e8590c"/>'
        for s, v in validation
    )
    best = (
        f'<line x1="{x(best_step - 1):.1f}" y1="{PAD}" x2="{x(best_step - 1):.1f}" '
        f'y2="{HEIGHT - PAD}" stroke="#2b8a3e" stroke-dasharray="4 3"/>'
        f'<text x="{x(best_step - 1) + 4:.1f}" y="{PAD + 10}" fill="#2b8a3e">kept: step '
        f"{best_step}</text>"
        if validation and best_step
        else ""
    )
    legend = '<tspan fill="#e8590c"> · validation loss</tspan>' if validation else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="{PAD}" y="{PAD - 8}"><tspan fill="#2f6fed">training loss</tspan>{legend}'
        f" (max {top:.3f})</text>"
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" text-anchor="end">'
        f"step {len(losses)}</text>"
        f'<polyline points="{raw}" fill="none" stroke="#9db7f5" stroke-width="1"/>'
        f'<polyline points="{avg}" fill="none" stroke="#2f6fed" stroke-width="2"/>'
        f'<polyline points="{val}" fill="none" stroke="#e8590c" stroke-width="1.5"/>'
        f"{dots}{best}</svg>"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        "<table><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + f"</tr>{cells}</table>"
    )


def _metric_rows(candidate: dict[str, float], production: dict[str, float]) -> list[list[str]]:
    return [
        [
            name,
            f"{production.get(name, 0):.4f}",
            f"{value:.4f}",
            f"{value - production.get(name, 0):+.4f}",
        ]
        for name, value in candidate.items()
    ]


def ended_by(train: dict[str, Any]) -> str:
    """Which rule ended training, in the words people scan for: the plateau, or a budget."""
    rule = train.get("stop_rule") or ""
    return {
        "plateau": "the validation loss stopped improving (plateau)",
        "step budget": "the step budget ran out before the validation loss stopped improving",
        "time budget": "the time budget ran out before the validation loss stopped improving",
        "diverged": "the validation loss diverged",
        "fixed length": "a fixed length (no validation split to stop on)",
    }.get(rule, rule or "not recorded")


def _training(record: dict[str, Any]) -> str:
    train = record.get("train") or {}
    plan = train.get("plan") or {}
    budget = f"{plan.get('max_steps', '?')} steps"
    if plan.get("max_minutes"):
        budget += f" or {plan['max_minutes']:g} minutes"
    also = f"(and {plan['min_delta']:g}) " if plan.get("min_delta") else ""
    rate = f" to a peak rate of {plan['learning_rate']:.2g}" if plan.get("learning_rate") else ""
    parts = [
        f'<p id="ended-by"><b>Training ended: {html.escape(ended_by(train))}.</b> '
        f"{html.escape(str(train.get('stop_reason', '')))}.</p>"
        f"<p>{train.get('steps', 0)} steps of a budget of {budget}; "
        f"{plan.get('train_examples', '?')} training and {plan.get('validation_examples', '?')}"
        f" validation examples; validation every {plan.get('eval_every', '?')} steps, stopping "
        f"after {plan.get('patience', '?')} without a {plan.get('min_improvement', 0):.0%} "
        f"{also}improvement (average of the last {plan.get('smoothing', 1)}); warm-up "
        f"{plan.get('warmup_steps', 0)} steps{rate}; best validation loss "
        f"{train.get('best_validation_loss')} at step {train.get('best_step')} (kept).</p>"
    ]
    trials = record.get("trials") or []
    if trials:
        rows = [
            [
                json.dumps(t["params"]),
                t["best_validation_loss"],
                t["best_step"],
                t["steps"],
                t.get("stop_rule", ""),
            ]
            for t in trials
        ]
        parts.append(
            "<h3>Search</h3>"
            + _table(["trial", "best val loss", "best step", "steps", "ended by"], rows)
        )
    return "".join(parts)


def _objective(record: dict[str, Any]) -> str:
    """What the run learned from and why; each stage; the held-out preference evidence."""
    objective = record.get("objective") or {}
    if not objective:
        return ""
    parts = [
        f'<p id="objective"><b>Objective: {html.escape(objective.get("objective", ""))}</b> — '
        f"{html.escape(objective.get('reason', ''))}</p>"
    ]
    stages = record.get("stages") or []
    if len(stages) > 1 or (stages and stages[0].get("stage") != "sft"):
        rows = []
        for st in stages:
            best = (st.get("validation_at_best") or {}) if st.get("objective") else {}
            rows.append([
                st.get("stage", ""),
                st.get("steps", 0),
                st.get("best_step", 0),
                st.get("stop_rule", ""),
                figure(best.get("rewards/accuracies")),
                figure(best.get("rewards/margins")),
            ])  # fmt: skip
        head = ["stage", "steps", "best step", "ended by", "val reward acc", "val margin"]
        parts.append(_table(head, rows))
    evidence = (record.get("preference") or {}).get("evidence") or {}
    if evidence.get("items"):
        rows = [
            ["held-out preferences", evidence["items"], ""],
            ["preference accuracy", figure(evidence.get("candidate_accuracy")),
             figure(evidence.get("production_accuracy"))],
            ["mean margin", figure(evidence.get("candidate_margin")),
             figure(evidence.get("production_margin"))],
            ["candidate beats production on", f"{evidence.get('won', 0):.0%}", ""],
        ]  # fmt: skip
        parts.append(
            "<h3>Preference evidence (held out)</h3>"
            + _table(["", "candidate", "production"], rows)
        )
    return "".join(parts)


def _evaluation(record: dict[str, Any]) -> str:
    gate = record.get("gate") or {}
    parts = []
    for ev in record.get("evaluations") or []:
        deciding = " — the gate decides on this set" if ev["name"] == gate.get("eval_set") else ""
        parts.append(
            f"<h3>{html.escape(ev['name'])} ({ev['size']} items){deciding}</h3>"
            + _table(
                ["metric", "production", "candidate", "gain"],
                _metric_rows(ev["candidate"], ev["production"]),
            )
        )
    decision = record.get("decision") or {}
    if decision:
        head, rows = decision_table(record)
        parts.append(
            "<h3>Adapter or prompt</h3>"
            + _table(head, rows)
            + f"<p><b>{html.escape(str(decision.get('reason', '')))}</b></p>"
        )
    prompt = record.get("prompt") or {}
    if prompt:
        parts.append(f"<p>Prompt shipped: {html.escape(str(prompt.get('reason', '')))}</p>")
    golden = record.get("golden") or {}
    if golden.get("items"):
        parts.append(f"<p>Golden set: {golden['items']} items, sha256 {golden['hash'][:16]}…</p>")
    slices = gate.get("slices") or []
    if slices:
        primary = gate.get("primary", "")
        rows = [
            [
                f"{s['kind']}={s['value']}",
                s["size"],
                "yes" if s["counted"] else "too small",
                f"{s['production'].get(primary, 0):.4f}",
                f"{s['candidate'].get(primary, 0):.4f}",
            ]
            for s in slices
        ]
        parts.append(
            f"<h3>Slices ({html.escape(primary)})</h3>"
            + _table(["slice", "items", "can reject", "production", "candidate"], rows)
        )
    judge = record.get("judge") or {}
    if judge:
        agree = judge.get("human_agreement") or {}
        rate = agree.get("rate")
        parts.append(
            f"<h3>LLM judge</h3><p>{html.escape(str(judge.get('model')))} at "
            f"{html.escape(str(judge.get('url')))}, rubric {html.escape(str(judge.get('rubric')))}"
            f". Agreement with reviewers: {agree.get('agreed', 0)} of {agree.get('pairs', 0)} "
            f"human-ordered pairs ({'n/a' if rate is None else f'{rate:.0%}'}; "
            f"{agree.get('ties', 0)} ties).</p>"
        )
    return "".join(parts)


def write_report(run_dir: Path, record: dict[str, Any]) -> Path:
    """loss.svg and report.html in the run directory; returns the report's path."""
    train = record.get("train") or {}
    curve = loss_curve_svg(
        record.get("losses", []), record.get("validation", []), train.get("best_step") or 0
    )
    (run_dir / "loss.svg").write_text(curve)
    gate = record.get("gate") or {}
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in gate.get("reasons", []))
    error = record.get("error")
    page = (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>loraloop retrain run {record.get('run_id')}</title>"
        "<style>body{font-family:sans-serif;max-width:800px;margin:2em auto}"
        "td,th{padding:2px 10px;text-align:right}td:first-child{text-align:left}</style>"
        f"<h1>Retrain run {record.get('run_id')} — {html.escape(str(record.get('alias')))}</h1>"
        f"<p>Outcome: <b>{html.escape(str(record.get('outcome')))}</b></p>"
        + (f"<p>Error: {html.escape(str(error))}</p>" if error else "")
        + f"<h2>Training</h2>{_objective(record)}{curve}{_training(record)}"
        + f"<h2>Evaluation gate</h2>{_evaluation(record)}<ul>{reasons}</ul>"
        + "<h2>Curation</h2><pre>"
        + f"{html.escape(json.dumps(record.get('curation', {}), indent=2))}</pre>"
    )
    path = run_dir / "report.html"
    path.write_text(page)
    return path
