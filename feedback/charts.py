"""Inline SVG line charts for the ops page: one line per alias and adapter version."""

from typing import Any

from feedback.ops import OpsStats

WIDTH, HEIGHT = 720, 180
COLORS = ["#2f6fed", "#1e8e5a", "#c0392b", "#b48ead", "#d08770", "#5e81ac", "#a3be8c"]
METRICS = [
    ("requests", "Requests"),
    ("mean_review_score", "Mean review score"),
    ("thumbs_down_rate", "Thumbs-down rate"),
    ("correction_rate", "Correction rate"),
    ("latency_p95_ms", "Latency p95 (ms)"),
]


def series_name(alias: str | None, version: int | None) -> str:
    return f"{alias or 'base'}{f'@{version}' if version else ''}"


def build_charts(
    stats: OpsStats,
) -> tuple[list[dict[str, Any]], list[dict[str, str]], tuple[int, int]]:
    windows = sorted({r.window_start for r in stats.rows})
    names = sorted({series_name(r.alias, r.adapter_version) for r in stats.rows})
    colors = {name: COLORS[i % len(COLORS)] for i, name in enumerate(names)}
    x_of = {w: _x(i, len(windows)) for i, w in enumerate(windows)}
    fmt = "%H:%M" if stats.window == "hour" else "%m-%d"
    step = max(1, len(windows) // 8)
    ticks = [(x_of[w], w.strftime(fmt)) for w in windows[::step]]
    charts = []
    for key, title in METRICS:
        points = [
            (series_name(r.alias, r.adapter_version), x_of[r.window_start], getattr(r, key))
            for r in stats.rows
            if getattr(r, key) is not None
        ]
        top = max((v for _, _, v in points), default=0) or 1
        lines = []
        for name in names:
            dots = [(x, _y(v, top)) for n, x, v in points if n == name]
            if dots:
                lines.append(
                    {
                        "color": colors[name],
                        "dots": dots,
                        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in dots),
                    }
                )
        charts.append(
            {
                "key": key,
                "title": title,
                "lines": lines,
                "ticks": ticks,
                "top": f"{top:.3g}",
                "empty": not lines,
            }
        )
    return charts, [{"name": n, "color": colors[n]} for n in names], (WIDTH, HEIGHT)


def _x(i: int, n: int) -> float:
    return 40 + (WIDTH - 60) * (i / (n - 1) if n > 1 else 0.5)


def _y(value: float, top: float) -> float:
    return HEIGHT - 20 - (HEIGHT - 40) * (value / top)


def share_chart(points: list[tuple[Any, float]]) -> dict[str, Any]:
    """One line of a share (0..1) over time, e.g. each drift report's drift share, drawn
    like the ops page's charts (the same template macro shape)."""
    n = len(points)
    dots = [(_x(i, n), _y(value, 1.0)) for i, (_, value) in enumerate(points)]
    step = max(1, n // 8)
    ticks = [(_x(i, n), at.strftime("%m-%d %H:%M")) for i, (at, _) in enumerate(points)][::step]
    line = {"color": COLORS[0], "dots": dots,
            "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in dots)}  # fmt: skip
    return {"key": "drift_share", "title": "Drift share", "lines": [line], "ticks": ticks,
            "top": "100%", "empty": not dots, "W": WIDTH, "H": HEIGHT}  # fmt: skip
