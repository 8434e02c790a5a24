"""The Overview's charts as inline SVG, drawn on the server: pure functions, no script."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape
from pydantic import BaseModel

WIDTH = 720
HEIGHT = 160
MARGIN = 32
# One colour per series, in order; readable on white and told apart without colour too
# (each series is named in the legend, in the same order).
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


class ChartPoint(BaseModel):
    at: datetime
    value: float


class ChartSeries(BaseModel):
    label: str
    points: list[ChartPoint]


class Chart(BaseModel):
    title: str
    unit: str
    series: list[ChartSeries]


def per_minute(cumulative: Sequence[ChartPoint]) -> list[ChartPoint]:
    """Increments between consecutive samples of a running total, per minute."""
    rates: list[ChartPoint] = []
    for before, after in itertools.pairwise(cumulative):
        minutes = (after.at - before.at).total_seconds() / 60
        if minutes > 0:
            rates.append(
                ChartPoint(at=after.at, value=max(0.0, after.value - before.value) / minutes)
            )
    return rates


def svg(chart: Chart, start: datetime, end: datetime) -> Markup:
    """The chart over [start, end] as an SVG element with a legend and the top value."""
    span = max((end - start).total_seconds(), 1.0)
    top = max((p.value for s in chart.series for p in s.points), default=0.0) or 1.0
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def xy(point: ChartPoint) -> str:
        x = MARGIN + inner_w * (point.at - start).total_seconds() / span
        y = MARGIN + inner_h * (1 - point.value / top)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(chart.title)}">',
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{inner_w}" height="{inner_h}" '
        'fill="none" stroke="#ccc"/>',
        f'<text x="{MARGIN}" y="{MARGIN - 8}" font-size="11">{escape(chart.unit)}: '
        f"up to {top:,.1f}</text>",
        f'<text x="{MARGIN}" y="{HEIGHT - 8}" font-size="11">{start:%H:%M} UTC</text>',
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{end:%H:%M}</text>",
    ]
    for index, series in enumerate(chart.series):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(xy(p) for p in series.points if start <= p.at <= end)
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'
            )
        parts.append(
            f'<text x="{WIDTH - MARGIN - 4}" y="{MARGIN + 14 + 13 * index}" font-size="11" '
            f'text-anchor="end" fill="{colour}">{escape(series.label)}</text>'
        )
    parts.append("</svg>")
    # Every text in it went through escape() above; the rest is numbers and constants.
    return Markup("".join(parts))  # noqa: S704
