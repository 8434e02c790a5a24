"""Spreading the last calls of a quota window instead of running into 429."""

from __future__ import annotations

import pytest

from mlconnector.visma.ratelimit import RatePacer, pacing_delay, read_rate_limit


@pytest.mark.parametrize(
    ("remaining", "seconds_to_reset", "reserve", "expected"),
    [
        (500, 1800.0, 100, 0.0),  # plenty left
        (100, 1800.0, 100, 1800.0 / 101),  # at the reserve: spread what is left
        (9, 100.0, 100, 10.0),
        (0, 42.0, 100, 42.0),  # nothing left: wait for the window
        (0, 0.0, 100, 0.0),  # the window has already reset
    ],
)
def test_pacing_delay(
    remaining: int, seconds_to_reset: float, reserve: int, expected: float
) -> None:
    assert pacing_delay(remaining, seconds_to_reset, reserve) == pytest.approx(expected)


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


async def test_the_pacer_counts_calls_down_between_answers() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = RatePacer(0.1, clock=lambda: now[0], sleep=sleep)
    await pacer.wait()  # nothing known yet: no waiting
    pacer.observe(
        {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "11", "x-ratelimit-reset": "60"}
    )
    await pacer.wait()  # 11 > reserve 10
    await pacer.wait()  # now 10 left (counted locally): spread over 60 s
    assert slept == [pytest.approx(60 / 11)]
