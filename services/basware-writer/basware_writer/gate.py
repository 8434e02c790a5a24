"""Every Basware call of one tenant goes through its gate: a slot among the requests in
flight, a slot of the shared request budget, and retries of 429, 5xx and transport failures
with exponential backoff and jitter (Retry-After as a floor)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from basware_writer.budget import RateBudget
from basware_writer.metrics import IN_FLIGHT, RATE_LIMITED, RETRIES
from mlconnector.basware.errors import BaswareRateLimited, BaswareUnavailable
from mlconnector.retry import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


class RetriesExhausted(Exception):
    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


def retry_reason(exc: BaswareRateLimited | BaswareUnavailable) -> str:
    if isinstance(exc, BaswareRateLimited):
        return "rate_limited"
    return "transport" if exc.status is None else "unavailable"


class BaswareGate:
    def __init__(
        self,
        tenant: str,
        region: Callable[[], Awaitable[str]],
        budget: RateBudget,
        backoff: Backoff,
        requests_in_flight: int,
    ) -> None:
        self.tenant = tenant
        self._region = region
        self._budget = budget
        self._backoff = backoff
        self._slots = asyncio.Semaphore(requests_in_flight)

    async def call(
        self, what: str, send: Callable[[], Awaitable[T]], *, budgeted: bool = True
    ) -> tuple[T, int]:
        """The answer and the number of attempts it took; RetriesExhausted after the last.
        An unbudgeted call (to storage, not to Basware's API) takes only a slot."""
        attempt = 1
        while True:
            region = await self._region()
            # The budget is taken inside the slot: a call that waited for a slot must still
            # see a Retry-After that another call received meanwhile.
            async with self._slots:
                if budgeted:
                    await self._budget.take(self.tenant, region)
                IN_FLIGHT.labels(self.tenant).inc()
                try:
                    return await send(), attempt
                except (BaswareRateLimited, BaswareUnavailable) as exc:
                    failure = exc
                    rate_limited = isinstance(exc, BaswareRateLimited)
                    if rate_limited:
                        RATE_LIMITED.labels(self.tenant).inc()
                    if rate_limited or exc.retry_after is not None:
                        # Recorded before the slot is given up, so no later call misses it.
                        await self._budget.push_back(
                            self.tenant,
                            region,
                            retry_after=exc.retry_after,
                            rate_limited=rate_limited,
                        )
                finally:
                    IN_FLIGHT.labels(self.tenant).dec()
            if self._backoff.exhausted(attempt):
                raise RetriesExhausted(
                    f"gave up after {attempt} attempts: {failure}", attempts=attempt
                ) from failure
            delay = self._backoff.delay(attempt, failure.retry_after)
            RETRIES.labels(self.tenant, retry_reason(failure)).inc()
            log.warning(
                "%s: Basware busy on %s (%s); attempt %d in %.2f s",
                self.tenant,
                what,
                failure,
                attempt + 1,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1
