"""Poll schedules: an interval or a cron expression per connection and entity.

Everything here is pure: given a schedule and when an entity was last polled, when is it
due next. The reader asks on every cycle with the schedules it has just read from the
store, so a changed schedule applies without a restart. Cron expressions are read in UTC.
An entity never polled (since the reader started) is due at once: the first poll catches
up from the cursor, and after that the schedule paces it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
# Longer than any useful poll interval, and far below where a due time would overflow datetime.
MAX_INTERVAL_SECONDS = 366 * _UNITS["d"]


class IntervalSchedule(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["interval"] = "interval"
    seconds: float = Field(gt=0, le=MAX_INTERVAL_SECONDS)

    def __str__(self) -> str:
        return f"every {_format_seconds(self.seconds)}"


class CronSchedule(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["cron"] = "cron"
    expression: str

    @field_validator("expression")
    @classmethod
    def _valid_cron(cls, expression: str) -> str:
        expression = " ".join(expression.split())
        if not croniter.is_valid(expression):
            raise ValueError(f"not a cron expression: {expression!r}")
        return expression

    def __str__(self) -> str:
        return f"cron {self.expression} (UTC)"


Schedule = Annotated[IntervalSchedule | CronSchedule, Field(discriminator="kind")]


def parse_every(text: str) -> IntervalSchedule:
    """`30s`, `5m`, `2h`, `1d` or plain seconds."""
    match = _EVERY.match(text)
    if match is None:
        raise ValueError(f"not an interval: {text!r} (examples: 30s, 5m, 2h, 1d, 90)")
    return IntervalSchedule(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def _format_seconds(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def next_due(
    schedule: IntervalSchedule | CronSchedule, last_run: datetime | None, now: datetime
) -> datetime:
    """When the entity is due next; `now` when it has never run. Datetimes are tz-aware."""
    if last_run is None:
        return now
    if isinstance(schedule, IntervalSchedule):
        return last_run + timedelta(seconds=schedule.seconds)
    due: datetime = croniter(schedule.expression, last_run).get_next(datetime)
    return due


def is_due(
    schedule: IntervalSchedule | CronSchedule, last_run: datetime | None, now: datetime
) -> bool:
    return next_due(schedule, last_run, now) <= now


def earliest_due(
    schedules: Mapping[str, IntervalSchedule | CronSchedule],
    last_runs: Mapping[str, datetime],
    now: datetime,
) -> datetime | None:
    """The soonest due time over several schedules keyed alike (for how long to sleep)."""
    times = [next_due(s, last_runs.get(key), now) for key, s in schedules.items()]
    return min(times, default=None)


def parse_schedule(text: str) -> IntervalSchedule | CronSchedule:
    """`30s`-style intervals, or `cron:<expression>` (configuration files, environment)."""
    if text.strip().startswith("cron:"):
        return CronSchedule(expression=text.strip().removeprefix("cron:"))
    return parse_every(text)
