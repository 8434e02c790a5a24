"""Staying under Visma's hourly quota by reading X-RateLimit-* before it runs out.

Visma answers every call with X-RateLimit-Limit/Remaining/Reset (seconds to the end of the
window). Once Remaining falls to the reserve, the calls left are spread evenly over the time
left, so the client slows down instead of running into a 429 and waiting a whole window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from pydantic import BaseModel


class RateLimitStatus(BaseModel):
    limit: int
    remaining: int
    reset_seconds: float


def read_rate_limit(headers: Mapping[str, str]) -> RateLimitStatus | None:
    try:
        return RateLimitStatus(
            limit=int(headers["x-ratelimit-limit"]),
            remaining=int(headers["x-ratelimit-remaining"]),
            reset_seconds=float(headers["x-ratelimit-reset"]),
        )
    except (KeyError, ValueError):
        return None


def pacing_delay(remaining: int, seconds_to_reset: float, reserve: int) -> float:
    """Seconds to wait before the next call, given what is left of the window."""
    if seconds_to_reset <= 0 or remaining > reserve:
        return 0.0
    if remaining <= 0:
        return seconds_to_reset
    return seconds_to_reset / (remaining + 1)


class RatePacer:
    """Shared by all calls of one client, i.e. one (tenant, client) quota."""

    def __init__(
        self,
        reserve_fraction: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._reserve_fraction = reserve_fraction
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._remaining = 0
        self._reserve = 0
        self._reset_at = 0.0
        self.last: RateLimitStatus | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        status = read_rate_limit(headers)
        if status is None:
            return
        self.last = status
        self._remaining = status.remaining
        self._reserve = max(1, int(status.limit * self._reserve_fraction))
        self._reset_at = self._clock() + status.reset_seconds

    async def wait(self) -> None:
        """Waits as long as the quota asks, then counts the coming call against it."""
        if self.last is None:
            return
        async with self._lock:
            delay = pacing_delay(self._remaining, self._reset_at - self._clock(), self._reserve)
            if delay > 0:
                await self._sleep(delay)
            if self._clock() < self._reset_at:
                # Concurrent callers see the budget shrink before the answers come back.
                self._remaining = max(0, self._remaining - 1)
