"""What a benchmark run found: figures per scenario, the table people read, the JSON kept.

Pure models and rendering; writing the JSON file is the only I/O here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

Comparison = Literal["<", "<=", ">="]
_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
}


class Target(BaseModel):
    """A bar from issue 9, e.g. `< 60 s`."""

    op: Comparison
    value: float

    def met_by(self, measured: float) -> bool:
        return _COMPARE[self.op](measured, self.value)


class Figure(BaseModel):
    name: str
    value: float | None
    unit: str = ""
    # Where the number comes from (a sandbox counter, a service metric, a Kafka timestamp).
    source: str
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.target.met_by(self.value)


# How a run hands over the figures of one scenario as soon as it has them.
Record = Callable[[str, list["Figure"]], None]


class ScenarioResult(BaseModel):
    scenario: str
    ok: bool
    seconds: float
    figures: list[Figure] = []
    error: str | None = None


class BenchReport(BaseModel):
    size: str
    started_at: datetime
    seconds: float
    cpus: int
    simulated_latency_ms: float
    writers: int = 1
    scenarios: list[ScenarioResult]
    # What the run was, for a report kept as a reference (bench/before.json).
    note: str | None = None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.scenarios)

    def figure(self, scenario: str, name: str) -> Figure | None:
        for result in self.scenarios:
            if result.scenario == scenario:
                for figure in result.figures:
                    if figure.name == name:
                        return figure
        return None

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench-{self.size}-{self.started_at:%Y%m%dT%H%M%S}.json"
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def error_summary(error: BaseException) -> str:
    """The error for a table cell: its first line, and its last (often the cause) if more."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return f"{type(error).__name__}: {text}"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer() and abs(value) >= 1:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def format_target(target: Target | None, unit: str) -> str:
    if target is None:
        return ""
    return f"{target.op} {format_value(target.value, unit)}"


def _verdict(figure: Figure) -> str:
    return {True: "yes", False: "NO", None: ""}[figure.met]


def render_table(scenarios: Sequence[ScenarioResult], before: BenchReport | None = None) -> str:
    """One Markdown table (readable in a terminal, pasteable into the README); with `before`,
    each figure's value in that report beside it."""
    header = ("scenario", "figure", "value", *(["before"] if before else []), "target", "met")
    rows: list[tuple[str, ...]] = []

    def earlier(scenario: str, figure: Figure) -> list[str]:
        if before is None:
            return []
        found = before.figure(scenario, figure.name)
        return [format_value(found.value, found.unit) if found else ""]

    for result in scenarios:
        if not result.ok:
            blank = [""] * (len(header) - 3)
            rows.append((result.scenario, "FAILED", result.error or "", *blank))
        for figure in result.figures:
            rows.append(
                (
                    result.scenario,
                    figure.name,
                    format_value(figure.value, figure.unit),
                    *earlier(result.scenario, figure),
                    format_target(figure.target, figure.unit),
                    _verdict(figure),
                )
            )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(row) for row in rows)])
