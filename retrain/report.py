"""A retraining run as people want to see it: the loss curve (SVG) and a one-page HTML
report with curation counts, the gate's numbers and its decision."""

import html
import json
from pathlib import Path
from statistics import fmean
from typing import Any

WIDTH, HEIGHT, PAD = 640, 220, 36


def loss_curve_svg(losses: list[float]) -> str:
    """Training loss per step, with a moving average over ~5 % of the steps."""
    if not losses:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"/>'
    top, low = max(losses), min(0.0, min(losses))
    span = (top - low) or 1.0
    window = max(1, len(losses) // 20)
    smooth = [fmean(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]

    def point(i: int, v: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * (i / max(1, len(losses) - 1))
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((v - low) / span)
        return f"{x:.1f},{y:.1f}"

    raw = " ".join(point(i, v) for i, v in enumerate(losses))
    avg = " ".join(point(i, v) for i, v in enumerate(smooth))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<text x="{PAD}" y="{PAD - 8}">training loss (max {top:.3f})</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" text-anchor="end">'
        f"step {len(losses)}</text>"
        f'<polyline points="{raw}" fill="none" stroke="#9db7f5" stroke-width="1"/>'
        f'<polyline points="{avg}" fill="none" stroke="#2f6fed" stroke-width="2"/>'
        "</svg>"
    )


def write_report(run_dir: Path, record: dict[str, Any], losses: list[float]) -> Path:
    """loss.svg and report.html in the run directory; returns the report's path."""
    curve = loss_curve_svg(losses)
    (run_dir / "loss.svg").write_text(curve)
    gate = record.get("gate") or {}
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{gate['production'].get(name, 0):.4f}</td>"
        f"<td>{value:.4f}</td><td>{value - gate['production'].get(name, 0):+.4f}</td></tr>"
        for name, value in gate.get("candidate", {}).items()
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in gate.get("reasons", []))
    page = (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>loraloop retrain run {record.get('run_id')}</title>"
        "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto}"
        "td,th{padding:2px 10px;text-align:right}td:first-child{text-align:left}</style>"
        f"<h1>Retrain run {record.get('run_id')} — {html.escape(str(record.get('alias')))}</h1>"
        f"<p>Outcome: <b>{html.escape(str(record.get('outcome')))}</b></p>"
        f"{curve}"
        "<h2>Evaluation gate</h2><table><tr><th>metric</th><th>production</th>"
        f"<th>candidate</th><th>gain</th></tr>{rows}</table><ul>{reasons}</ul>"
        "<h2>Curation</h2><pre>"
        f"{html.escape(json.dumps(record.get('curation', {}), indent=2))}</pre>"
    )
    path = run_dir / "report.html"
    path.write_text(page)
    return path
