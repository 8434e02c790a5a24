"""The request budget per Basware tenant and region, shared by every writer instance.

A token bucket kept in PostgreSQL (its statements and their rules: rate_budget.sql): every
Basware call waits for a reserved slot; a 429 halves the rate and its Retry-After blocks the
whole budget, so no instance sends before Basware said it may (docs/basware-api.md §10.6).
"""

from __future__ import annotations

import asyncio
from importlib import resources

import asyncpg

from basware_writer.metrics import BUDGET_WAITS
from basware_writer.settings import WriterSettings

NAME_MARK = "-- name:"


def named_statements(text: str) -> dict[str, str]:
    """The statements of a .sql file, each under the `-- name: <name>` line that opens it."""
    statements: dict[str, str] = {}
    name: str | None = None
    for line in text.splitlines():
        if line.startswith(NAME_MARK):
            name = line.removeprefix(NAME_MARK).strip()
            statements[name] = ""
        elif name is not None:
            statements[name] += line + "\n"
    return {n: s.strip().removesuffix(";") for n, s in statements.items()}


STATEMENTS = named_statements(
    resources.files("basware_writer").joinpath("rate_budget.sql").read_text()
)


class RateBudget:
    def __init__(self, pool: asyncpg.Pool, settings: WriterSettings) -> None:
        self._pool = pool
        self._settings = settings

    async def reserve(self, tenant: str, region: str, slots: int = 1) -> list[float]:
        """Reserves consecutive request slots of (tenant, region): the seconds until each."""
        s = self._settings
        waits: list[float] = await self._pool.fetchval(
            STATEMENTS["reserve"],
            tenant,
            region,
            s.rate_per_second,
            s.rate_burst,
            s.rate_recovery_seconds,
            slots,
        )
        return waits

    async def take(self, tenant: str, region: str) -> float:
        """Waits for the next request slot of (tenant, region); returns the seconds waited."""
        (wait,) = await self.reserve(tenant, region)
        if wait > 0:
            BUDGET_WAITS.labels(tenant).observe(wait)
            await asyncio.sleep(wait)
        return wait

    async def push_back(
        self, tenant: str, region: str, *, retry_after: float | None, rate_limited: bool
    ) -> None:
        """Basware answered 429 (rate_limited: the rate halves) or 503 with a Retry-After."""
        s = self._settings
        await self._pool.execute(
            STATEMENTS["push_back"],
            tenant,
            region,
            s.rate_per_second,
            s.rate_burst,
            s.rate_min_per_second,
            s.rate_recovery_seconds,
            retry_after,
            rate_limited,
        )
