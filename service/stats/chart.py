"""The daily views/visitors chart as server-side SVG (no script, no inline style: the strict CSP holds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 720, 200, 28


def svg(series: Sequence[dict[str, Any]]) -> Markup:
    """Bars for views, a line for visitors, one ``<title>`` per day for hover and screen readers."""
    days = max(len(series), 1)
    top = max([day["views"] for day in series] + [day["visitors"] for day in series] + [1])
    step = (WIDTH - 2 * PAD) / days
    bar = max(step * 0.7, 1)

    def y(value: int) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top, 1)

    parts = [f'<svg class="stats-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label="Daily views and visitors">',
             f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>',
             f'<text class="label" x="{PAD}" y="{PAD - 10}">{top:,}</text>']
    points = []
    for index, day in enumerate(series):
        x = round(PAD + index * step + (step - bar) / 2, 1)
        parts.append(f'<rect class="views" x="{x}" y="{y(day["views"])}" width="{round(bar, 1)}" '
                     f'height="{round(HEIGHT - PAD - y(day["views"]), 1)}"><title>{escape(day["date"])}: '
                     f'{day["views"]:,} views, {day["visitors"]:,} visitors</title></rect>')
        points.append(f"{round(x + bar / 2, 1)},{y(day['visitors'])}")
    if points:
        parts.append(f'<polyline class="visitors" points="{" ".join(points)}"/>')
        parts.append(f'<text class="label" x="{PAD}" y="{HEIGHT - 8}">{escape(series[0]["date"])}</text>')
        parts.append(f'<text class="label end" x="{WIDTH - PAD}" y="{HEIGHT - 8}">{escape(series[-1]["date"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is a number or escaped
