"""Poll schedules: intervals, cron expressions and when an entity is due next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from mlconnector.schedule import (
    CronSchedule,
    IntervalSchedule,
    Schedule,
    earliest_due,
    is_due,
    next_due,
    parse_every,
    parse_schedule,
)

NOW = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("90", 90), ("1.5m", 90)],
)
def test_parse_every(text: str, seconds: float) -> None:
    assert parse_every(text).seconds == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-5s", "0s"])
def test_parse_every_refuses_what_is_not_a_positive_interval(text: str) -> None:
    with pytest.raises(ValueError, match=r"interval|greater than 0"):
        parse_every(text)


def test_invalid_cron_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a cron expression"):
        CronSchedule(expression="*/5 * * *")


def test_never_run_is_due_now() -> None:
    assert next_due(parse_every("1h"), None, NOW) == NOW
    assert next_due(CronSchedule(expression="0 3 * * *"), None, NOW) == NOW


def test_interval_is_due_that_long_after_the_last_run() -> None:
    last = NOW - timedelta(seconds=20)
    assert next_due(parse_every("30s"), last, NOW) == last + timedelta(seconds=30)
    assert not is_due(parse_every("30s"), last, NOW)
    assert is_due(parse_every("20s"), last, NOW)


def test_cron_is_due_at_the_next_matching_minute_after_the_last_run() -> None:
    every_five = CronSchedule(expression="*/5 * * * *")
    last = datetime(2026, 3, 2, 10, 3, 10, tzinfo=UTC)
    assert next_due(every_five, last, NOW) == datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    assert is_due(every_five, last, NOW)
    assert not is_due(every_five, datetime(2026, 3, 2, 10, 5, 0, tzinfo=UTC), NOW)


def test_schedules_round_trip_through_json() -> None:
    adapter: TypeAdapter[IntervalSchedule | CronSchedule] = TypeAdapter(Schedule)
    for schedule in (parse_every("45s"), CronSchedule(expression="0  */2 * * 1-5")):
        assert adapter.validate_json(adapter.dump_json(schedule)) == schedule


def test_schedules_describe_themselves() -> None:
    assert str(parse_every("300")) == "every 5m"
    assert str(parse_every("45s")) == "every 45s"
    assert str(CronSchedule(expression="0 3 * * *")) == "cron 0 3 * * * (UTC)"


def test_earliest_due_picks_the_soonest_schedule() -> None:
    schedules = {"a": parse_every("1h"), "b": parse_every("10m")}
    last = {"a": NOW, "b": NOW - timedelta(minutes=5)}
    assert earliest_due(schedules, last, NOW) == NOW + timedelta(minutes=5)
    assert earliest_due({}, {}, NOW) is None


def test_parse_schedule_reads_intervals_and_prefixed_cron() -> None:
    assert parse_schedule("5m") == IntervalSchedule(seconds=300)
    assert parse_schedule("cron: */5 * * * *") == CronSchedule(expression="*/5 * * * *")


def test_an_interval_longer_than_a_year_is_refused() -> None:
    # Without the bound, the reader would overflow datetime computing when it is due.
    assert parse_every("366d").seconds == 366 * 86400
    with pytest.raises(ValidationError, match="less than or equal to"):
        parse_every("99999999999999999999d")
