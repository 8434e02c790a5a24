"""Time as the API shows and accepts it: zone-less filter values, millisecond precision.

The filter formats are exactly the five Visma documents (docs/visma-net.md §5.1); a `Z` or an
offset is refused. Stored times are naive and mean UTC on the sandbox's clock; how they are
rendered is a switch, so client parsers meet the mixed shapes the real API returns.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# yyyy-MM-dd, yyyy-MM-dd HH:mm:ss[.FFF], yyyy-MM-ddTHH:mm:ss[.FFF]; FFF is 1-3 digits.
_FILTER_FORMAT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,3}))?)?"
)


class TimestampStyle(StrEnum):
    NAIVE = "naive"  # 2026-10-14T09:21:07.31 (the default)
    UTC_Z = "z"  # 2026-10-14T09:21:07.31Z
    OFFSET = "offset"  # the same instant at +02:00: 2026-10-14T11:21:07.31+02:00
    MIXED = "mixed"  # one of the three, varying per record


def now_ms() -> datetime:
    """The server clock: naive UTC at the API's precision (milliseconds, truncated)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_precision(value: datetime) -> datetime:
    value = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def parse_filter_datetime(text: str) -> datetime | None:
    """A filter value in one of the five documented formats; None for anything else."""
    match = _FILTER_FORMAT.fullmatch(text)
    if match is None:
        return None
    raw = match["date"] + "T" + (match["time"] or "00:00:00")
    frac = match["frac"]
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value.replace(microsecond=int(frac.ljust(3, "0")) * 1000) if frac else value


def _trimmed(value: datetime) -> str:
    # .NET's "FFF": up to three fraction digits, trailing zeros (and a bare dot) dropped.
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    millis = value.microsecond // 1000
    return f"{text}.{millis:03d}".rstrip("0") if millis else text


OFFSET = timedelta(hours=2)


def render_datetime(value: datetime, style: TimestampStyle, variant: int = 0) -> str:
    if style is TimestampStyle.MIXED:
        style = (TimestampStyle.NAIVE, TimestampStyle.UTC_Z, TimestampStyle.OFFSET)[variant % 3]
    if style is TimestampStyle.UTC_Z:
        return _trimmed(value) + "Z"
    if style is TimestampStyle.OFFSET:
        return _trimmed(value + OFFSET) + "+02:00"
    return _trimmed(value)
