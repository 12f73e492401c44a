"""The views/visitors chart as server-side SVG (no script, no inline style: the strict CSP holds), one bar
per day, week or month (`report.buckets`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 720, 200, 28


def _name(bucket: dict[str, Any], unit: str) -> str:
    """How a bucket is named in its ``<title>``: the day, the week's days, or the month and its days."""
    if unit == "day":
        return bucket["from"]
    if unit == "week":
        return f"week {bucket['from']} to {bucket['to']}"
    return f"{bucket['from'][:7]} ({bucket['from']} to {bucket['to']})"


def svg(series: Sequence[dict[str, Any]], unit: str = "day") -> Markup:
    """Bars for views, a line for visitors, one ``<title>`` per bucket (``unit``: day, week or month) for
    hover and screen readers."""
    count = max(len(series), 1)
    top = max([bucket["views"] for bucket in series] + [bucket["visitors"] for bucket in series] + [1])
    step = (WIDTH - 2 * PAD) / count
    bar = max(step * 0.7, 1)

    def y(value: int) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top, 1)

    parts = [f'<svg class="stats-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="Views and visitors per {escape(unit)}">',
             f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>',
             f'<text class="label" x="{PAD}" y="{PAD - 10}">{top:,}</text>']
    points = []
    for index, bucket in enumerate(series):
        x = round(PAD + index * step + (step - bar) / 2, 1)
        parts.append(f'<rect class="views" x="{x}" y="{y(bucket["views"])}" width="{round(bar, 1)}" '
                     f'height="{round(HEIGHT - PAD - y(bucket["views"]), 1)}"><title>{escape(_name(bucket, unit))}: '
                     f'{bucket["views"]:,} views, {bucket["visitors"]:,} visitors</title></rect>')
        points.append(f"{round(x + bar / 2, 1)},{y(bucket['visitors'])}")
    if points:
        parts.append(f'<polyline class="visitors" points="{" ".join(points)}"/>')
        parts.append(f'<text class="label" x="{PAD}" y="{HEIGHT - 8}">{escape(series[0]["from"])}</text>')
        parts.append(f'<text class="label end" x="{WIDTH - PAD}" y="{HEIGHT - 8}">{escape(series[-1]["to"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is a number or escaped
