"""Visma's date-times: mixed shapes in answers, one zone-less shape in filters.

Answers carry `lastModifiedDateTime` naive (`2026-10-14T09:21:07.31`), with `Z` or with an
offset, and with up to seven fraction digits (docs/visma-net.md §5.2). Everything is
normalised to a naive value: an aware value is converted to UTC first. Converting (rather
than dropping the zone) is the safe choice for a cursor: if the server's naive values are
UTC it is exact, and if they are local time the cursor only lands earlier, i.e. inside the
overlap window, never after a change.

Filters accept exactly `yyyy-MM-ddTHH:mm:ss.FFF` and friends, never a zone
(docs/visma-net.md §5.1); values are truncated to milliseconds, never rounded up, so `>=`
cannot skip a row.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_visma_datetime(value: object) -> object:
    """A naive datetime from any shape Visma sends; other input is left for pydantic to refuse."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        text = _FRACTION.sub(r"\1", text)  # .NET writes 7 digits; Python reads at most 6
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def format_filter_datetime(value: datetime) -> str:
    """`yyyy-MM-ddTHH:mm:ss.fff`, zone-less, truncated to the millisecond."""
    value = naive_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


VismaDateTime = Annotated[datetime, BeforeValidator(parse_visma_datetime)]
