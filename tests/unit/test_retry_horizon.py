"""Retries bounded by a horizon of time (mlconnector.retry), and a batch's deadline cutting
it (basware_writer.backoff)."""

from __future__ import annotations

import time

import pytest

from basware_writer.backoff import BATCH_DEADLINE, within_deadline
from mlconnector.retry import Backoff, RetriesExhausted, retrying


class Busy(Exception):
    pass


class Storm:
    """A server refusing the first `refusals` attempts, on a clock only sleeps move."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.attempts = 0
        self.now = 0.0

    async def attempt(self) -> str:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise Busy(f"refused attempt {self.attempts}")
        return "done"

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


async def test_a_storm_longer_than_eight_attempts_is_waited_out_within_the_horizon() -> None:
    storm = Storm(refusals=40)
    backoff = Backoff(base_seconds=1, cap_seconds=2, max_attempts=None, horizon_seconds=3600)

    answer, attempts = await retrying(
        storm.attempt, backoff, retry_on=(Busy,), sleep=storm.sleep, clock=storm.clock
    )

    assert (answer, attempts) == ("done", 41)


async def test_past_the_horizon_the_last_failure_says_how_many_attempts_over_how_long() -> None:
    storm = Storm(refusals=10_000)
    backoff = Backoff(base_seconds=1, cap_seconds=10, max_attempts=None, horizon_seconds=120)

    with pytest.raises(RetriesExhausted) as raised:
        await retrying(
            storm.attempt,
            backoff,
            retry_on=(Busy,),
            retry_after=lambda _: 5.0,
            sleep=storm.sleep,
            clock=storm.clock,
        )

    # Every wait is at least the Retry-After, and none goes past the horizon.
    assert storm.now <= 120
    assert raised.value.attempts == storm.attempts
    assert raised.value.seconds == storm.now
    assert f"gave up after {storm.attempts} attempts over {storm.now:.0f} s" in str(raised.value)
    assert "refused attempt" in str(raised.value)


async def test_a_retry_after_beyond_the_horizon_ends_at_once() -> None:
    storm = Storm(refusals=1)
    backoff = Backoff(max_attempts=None, horizon_seconds=30)

    with pytest.raises(RetriesExhausted):
        await retrying(
            storm.attempt,
            backoff,
            retry_on=(Busy,),
            retry_after=lambda _: 60.0,
            sleep=storm.sleep,
            clock=storm.clock,
        )
    assert storm.now == 0


def test_a_batch_deadline_cuts_the_horizon_and_nothing_else_does() -> None:
    backoff = Backoff(max_attempts=None, horizon_seconds=3600)
    assert within_deadline(backoff) == backoff
    token = BATCH_DEADLINE.set(time.monotonic() + 10)
    try:
        cut = within_deadline(backoff).horizon_seconds
    finally:
        BATCH_DEADLINE.reset(token)
    assert cut is not None
    assert 9 < cut <= 10
