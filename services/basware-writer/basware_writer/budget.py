"""The request budget per Basware tenant and region, shared by every writer instance.

A token bucket kept in PostgreSQL (the functions of migrations/002): every Basware call
reserves a slot and sleeps until it; a 429 halves the rate and its Retry-After blocks the
whole budget, so no instance sends before Basware said it may.
"""

from __future__ import annotations

import asyncio

import asyncpg

from basware_writer.metrics import BUDGET_WAITS
from basware_writer.settings import WriterSettings


class RateBudget:
    def __init__(self, pool: asyncpg.Pool, settings: WriterSettings) -> None:
        self._pool = pool
        self._settings = settings

    async def take(self, tenant: str, region: str) -> float:
        """Waits for the next request slot of (tenant, region); returns the seconds waited."""
        s = self._settings
        wait: float = await self._pool.fetchval(
            "SELECT writer_take_budget($1, $2, $3, $4, $5)",
            tenant,
            region,
            s.rate_per_second,
            s.rate_burst,
            s.rate_recovery_seconds,
        )
        if wait > 0:
            BUDGET_WAITS.labels(tenant).observe(wait)
            await asyncio.sleep(wait)
        return max(wait, 0.0)

    async def push_back(
        self, tenant: str, region: str, *, retry_after: float | None, rate_limited: bool
    ) -> None:
        """Basware answered 429 (rate_limited: the rate halves) or 503 with a Retry-After."""
        s = self._settings
        await self._pool.execute(
            "SELECT writer_slow_budget($1, $2, $3, $4, $5, $6, $7, $8)",
            tenant,
            region,
            s.rate_per_second,
            s.rate_burst,
            s.rate_min_per_second,
            s.rate_recovery_seconds,
            retry_after,
            rate_limited,
        )
