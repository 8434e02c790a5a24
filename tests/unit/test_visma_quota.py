"""Visma's quota as the connector reads and plans it: the headers, what a plan says to a
person, and when a backfill can be done given the windows it must wait for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlconnector.visma.quota_plan import QuotaStanding, backfill_eta
from mlconnector.visma.ratelimit import read_rate_limit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def standing(
    *, limit: int | None = 1000, used: int = 0, resets_in: float | None = 1800, **more: object
) -> QuotaStanding:
    return QuotaStanding.model_validate(
        {
            "company_id": "1000001",
            "client_id": "client",
            "quota_limit": limit,
            "reserve_fraction": 0.1,
            "window_seconds": 3600,
            "used": used,
            "resets_at": None if resets_in is None else NOW + timedelta(seconds=resets_in),
            "live_refused": 0,
            "bulk_refused": 0,
            "bulk_spent_at": None,
            "now": NOW,
            **more,
        }
    )


def test_headers_are_read_or_ignored() -> None:
    status = read_rate_limit(
        {"x-ratelimit-limit": "15000", "x-ratelimit-remaining": "12", "x-ratelimit-reset": "30"}
    )
    assert status is not None
    assert (status.limit, status.remaining, status.reset_seconds) == (15000, 12, 30.0)
    assert read_rate_limit({"x-ratelimit-limit": "15000"}) is None
    assert (
        read_rate_limit(
            {"x-ratelimit-limit": "a", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "1"}
        )
        is None
    )


def test_the_bulk_share_stops_at_the_live_reserve() -> None:
    plan = standing(used=899)
    assert (plan.reserve, plan.bulk_share) == (100, 900)
    assert not plan.bulk_spent
    assert plan.resumes_at is None
    spent = standing(used=900)
    assert spent.bulk_spent
    assert spent.resumes_at == NOW + timedelta(seconds=1800)


def test_a_window_past_its_end_counts_nothing_used() -> None:
    plan = standing(used=1000, resets_in=-5)
    assert plan.window_over
    assert plan.used_now == 0
    assert not plan.bulk_spent


@pytest.mark.parametrize(
    ("used", "calls", "expected_seconds"),
    [
        (0, 0, 0),  # nothing left to do
        (0, 900, 0),  # this window has the calls: now
        (500, 400, 0),
        (500, 401, 1800),  # one call more: the next window, which opens at the reset
        (900, 900, 1800),  # this window spent: one whole window after the reset
        (900, 901, 1800 + 3600),  # two windows
        (0, 900 * 3, 1800 + 3600),  # this one and two more
    ],
)
def test_the_backfill_eta_counts_the_windows_it_needs(
    used: int, calls: int, expected_seconds: float
) -> None:
    assert backfill_eta(standing(used=used), calls) == NOW + timedelta(seconds=expected_seconds)


def test_no_eta_while_the_limit_is_not_known() -> None:
    assert backfill_eta(standing(limit=None, resets_in=None), 10) is None


def test_a_window_that_is_over_starts_at_once() -> None:
    # The next call opens a new window, whose end is an hour away.
    plan = standing(used=1000, resets_in=-60)
    assert backfill_eta(plan, 900) == NOW
    assert backfill_eta(plan, 901) == NOW + timedelta(hours=1)
