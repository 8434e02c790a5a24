"""Visma date-time shapes in answers and the one shape filters accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from mlconnector.visma.datetimes import format_filter_datetime, parse_visma_datetime
from mlconnector.visma.models import VismaSupplier


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-14T09:21:07.31", datetime(2026, 10, 14, 9, 21, 7, 310_000)),
        ("2026-10-14T09:21:07", datetime(2026, 10, 14, 9, 21, 7)),
        ("2026-10-14T09:21:07.31Z", datetime(2026, 10, 14, 9, 21, 7, 310_000)),
        ("2026-10-14T11:21:07.31+02:00", datetime(2026, 10, 14, 9, 21, 7, 310_000)),
        ("2026-10-14T08:21:07-01:00", datetime(2026, 10, 14, 9, 21, 7)),
        ("2026-10-14T09:21:07.1234567", datetime(2026, 10, 14, 9, 21, 7, 123_456)),
        ("2026-10-14T09:21:07.1234567Z", datetime(2026, 10, 14, 9, 21, 7, 123_456)),
    ],
)
def test_every_shape_becomes_naive_utc(text: str, expected: datetime) -> None:
    assert parse_visma_datetime(text) == expected


def test_records_compare_whatever_shape_their_timestamp_came_in() -> None:
    shapes = ["2026-10-14T09:21:07.5", "2026-10-14T09:21:07.5Z", "2026-10-14T10:21:07.5+01:00"]
    records = [
        VismaSupplier.model_validate({"number": "1", "name": "A", "lastModifiedDateTime": s})
        for s in shapes
    ]
    assert len({r.last_modified_date_time for r in records}) == 1
    assert (
        max(records, key=lambda r: r.last_modified_date_time).last_modified_date_time.tzinfo is None
    )


def test_garbage_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        VismaSupplier.model_validate(
            {"number": "1", "name": "A", "lastModifiedDateTime": "yesterday"}
        )


def test_filter_values_are_zone_less_and_truncated_to_the_millisecond() -> None:
    assert (
        format_filter_datetime(datetime(2026, 1, 2, 3, 4, 5, 678_999)) == "2026-01-02T03:04:05.678"
    )
    assert format_filter_datetime(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000"
    aware = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_filter_datetime(aware) == "2026-01-02T03:04:05.000"
    assert format_filter_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)).endswith("05.000")
