"""The retry policy of every outbound call (the Basware writer's and the Visma client's):
exponential backoff with full jitter, the server's Retry-After honoured as a floor, bounded
by a number of attempts, by a horizon of time, or both."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Backoff(BaseModel):
    """How long to wait before attempt `attempt + 1` (attempts count from 1), and when to
    stop: after `max_attempts` (None: no count), or when the next attempt would start more
    than `horizon_seconds` after the first (None: no horizon)."""

    base_seconds: float = Field(default=0.2, gt=0)
    cap_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int | None = Field(default=8, ge=1)
    horizon_seconds: float | None = Field(default=None, ge=0)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        jittered = random.uniform(0, ceiling)
        # Retry-After is a floor, never shortened by jitter: a request sent earlier is wasted.
        return max(jittered, retry_after) if retry_after is not None else jittered

    def exhausted(self, attempt: int, next_at: float = 0.0) -> bool:
        """Whether attempt `attempt` was the last; `next_at` is when the next one would
        start, in seconds since the first."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return True
        return self.horizon_seconds is not None and next_at > self.horizon_seconds


class RetriesExhausted(Exception):
    """The last attempt failed as well; `failure` is how."""

    def __init__(self, failure: Exception, *, attempts: int, seconds: float = 0.0) -> None:
        super().__init__(f"gave up after {attempts} attempts over {seconds:.0f} s: {failure}")
        self.failure = failure
        self.attempts = attempts
        self.seconds = seconds


# Why an attempt failed, the attempt's number, and the seconds until the next one.
OnRetry = Callable[[Exception, int, float], None]


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: tuple[type[Exception], ...],
    retry_after: Callable[[Exception], float | None] = lambda _: None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """The answer of the first attempt that does not raise one of `retry_on`, and the number
    of attempts it took; RetriesExhausted once `backoff` gives up. Other errors pass at once."""
    number = 1
    started = clock()
    while True:
        try:
            return await attempt(), number
        except retry_on as failure:
            delay = backoff.delay(number, retry_after(failure))
            elapsed = clock() - started
            if backoff.exhausted(number, elapsed + delay):
                raise RetriesExhausted(failure, attempts=number, seconds=elapsed) from failure
            if on_retry is not None:
                on_retry(failure, number, delay)
            await sleep(delay)
            number += 1


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Reads Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
