"""Where the writer backs off Basware: every call of a tenant takes a slot among the requests
in flight and a slot of the shared request budget (mlconnector/basware/rate_budget.py), and
429, 5xx and transport failures are retried by the one retry policy (mlconnector.retry:
exponential backoff, full jitter, Retry-After as a floor); a 429 also slows the budget of
every instance (docs/basware-p2p.md §10.6). Retries end at the retry horizon, and within a
batch at the batch's deadline (BATCH_DEADLINE), so no batch outlives the consumer's poll
interval."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

from basware_writer.metrics import IN_FLIGHT, RATE_LIMITED, RETRIES
from mlconnector.basware.errors import BaswareRateLimited, BaswareUnavailable
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.retry import Backoff, retrying

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIED = (BaswareRateLimited, BaswareUnavailable)

# When the batch being delivered must stop retrying (time.monotonic()); None outside a batch.
BATCH_DEADLINE: ContextVar[float | None] = ContextVar("batch_deadline", default=None)


def within_deadline(backoff: Backoff) -> Backoff:
    """The backoff of a call, its horizon cut to what is left of the batch's."""
    deadline = BATCH_DEADLINE.get()
    if deadline is None:
        return backoff
    left = max(0.0, deadline - time.monotonic())
    if backoff.horizon_seconds is not None:
        left = min(left, backoff.horizon_seconds)
    return backoff.model_copy(update={"horizon_seconds": left})


def retry_reason(exc: Exception) -> str:
    if isinstance(exc, BaswareRateLimited):
        return "rate_limited"
    if isinstance(exc, BaswareUnavailable) and exc.status is not None:
        return "unavailable"
    return "transport"


def _retry_after(exc: Exception) -> float | None:
    return exc.retry_after if isinstance(exc, RETRIED) else None


class BaswareBackoff:
    """The calls of one tenant to Basware, within its slots and budget, retried."""

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

        def retried(failure: Exception, attempt: int, delay: float) -> None:
            RETRIES.labels(self.tenant, retry_reason(failure)).inc()
            log.warning(
                "%s: Basware busy on %s (%s); attempt %d in %.2f s",
                self.tenant,
                what,
                failure,
                attempt + 1,
                delay,
            )

        return await retrying(
            lambda: self._attempt(send, budgeted),
            within_deadline(self._backoff),
            retry_on=RETRIED,
            retry_after=_retry_after,
            on_retry=retried,
        )

    async def _attempt(self, send: Callable[[], Awaitable[T]], budgeted: bool) -> T:
        region = await self._region()
        # The budget is taken inside the slot: a call that waited for a slot must still
        # see a Retry-After that another call received meanwhile.
        async with self._slots:
            if budgeted:
                await self._budget.take(self.tenant, region)
            IN_FLIGHT.labels(self.tenant).inc()
            try:
                return await send()
            except RETRIED as exc:
                rate_limited = isinstance(exc, BaswareRateLimited)
                if rate_limited:
                    RATE_LIMITED.labels(self.tenant).inc()
                if rate_limited or exc.retry_after is not None:
                    # Recorded before the slot is given up, so no later call misses it.
                    await self._budget.push_back(
                        self.tenant, region, retry_after=exc.retry_after, rate_limited=rate_limited
                    )
                raise
            finally:
                IN_FLIGHT.labels(self.tenant).dec()
