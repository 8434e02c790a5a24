"""The request budget per Basware tenant and region, shared by every process that calls
Basware (every writer instance, the reconciler).

A token bucket kept in PostgreSQL (its statements and their rules: rate_budget.sql; its table
writer_budget is created by basware-writer's migrations): every Basware call waits for a
reserved slot; a 429 halves the rate and its Retry-After blocks the
whole budget, so no instance sends before Basware said it may (docs/basware-p2p.md §10.6).
A slot that was waited for is checked against the block again before it is used: a
Retry-After given meanwhile (to this instance or another) wins over the reservation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from importlib import resources
from typing import Protocol

import asyncpg

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
    resources.files("mlconnector.basware").joinpath("rate_budget.sql").read_text()
)


Reserve = Callable[[int], Awaitable[list[float]]]
# Told the tenant and the seconds a call waited for its slot (a metric, for instance).
WaitObserver = Callable[[str, float], None]


class BudgetRates(Protocol):
    """The budget's rates, as the writer's and the reconciler's settings both carry them."""

    @property
    def rate_per_second(self) -> float: ...
    @property
    def rate_burst(self) -> float: ...
    @property
    def rate_min_per_second(self) -> float: ...
    @property
    def rate_recovery_seconds(self) -> float: ...


class SlotRequests:
    """The takers of one budget, served together: whoever asks while a reservation is on its
    way to PostgreSQL is served by the next one, so the shared row is taken once per round
    trip rather than once per call, and no call waits behind another's statement."""

    def __init__(self, reserve: Reserve) -> None:
        self._reserve = reserve
        self._waiting: list[asyncio.Future[float]] = []
        self._server: asyncio.Task[None] | None = None

    async def take(self) -> float:
        """The seconds until the slot reserved for this caller."""
        slot: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        if self._server is None:
            self._server = asyncio.create_task(self._serve(), name="writer-budget")
        return await slot

    async def _serve(self) -> None:
        try:
            while self._waiting:
                takers, self._waiting = self._waiting, []
                try:
                    waits = await self._reserve(len(takers))
                except Exception as exc:
                    for taker in takers:
                        if not taker.done():
                            taker.set_exception(exc)
                    continue
                for taker, wait in zip(takers, waits, strict=True):
                    if not taker.done():
                        taker.set_result(wait)
        finally:
            self._server = None


Budget = tuple[str, str]  # (tenant, region)


class RateBudget:
    def __init__(
        self, pool: asyncpg.Pool, settings: BudgetRates, on_wait: WaitObserver | None = None
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._on_wait = on_wait
        self._requests: dict[Budget, SlotRequests] = {}
        self._block_reads: dict[Budget, SlotRequests] = {}
        # Retry-After known to this process (monotonic end), before PostgreSQL has it.
        self._blocked_until: dict[Budget, float] = {}

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

    async def blocked(self, tenant: str, region: str, takers: int = 1) -> list[float]:
        """The seconds until the shared Retry-After block of (tenant, region) ends, per taker."""
        wait: float = await self._pool.fetchval(STATEMENTS["blocked"], tenant, region)
        return [wait] * takers

    def _local_block(self, budget: Budget) -> float:
        return max(0.0, self._blocked_until.get(budget, 0.0) - time.monotonic())

    async def take(self, tenant: str, region: str) -> float:
        """Waits for a request slot of (tenant, region) that no Retry-After covers when it
        comes; returns the seconds waited."""
        budget = (tenant, region)
        waited = 0.0
        while True:
            wait = await self._served(self._requests, budget, self.reserve).take()
            if wait > 0:
                await asyncio.sleep(wait)
                waited += wait
                # A 429 may have come while this slot was waited for.
                wait = await self._served(self._block_reads, budget, self.blocked).take()
            local = self._local_block(budget)
            if wait <= 0 and local <= 0:
                break
            # Blocked: a fresh slot, reserved after the block (a block not in PostgreSQL
            # yet is slept here first).
            await asyncio.sleep(local)
            waited += local
        if waited > 0 and self._on_wait is not None:
            self._on_wait(tenant, waited)
        return waited

    @staticmethod
    def _served(
        served: dict[Budget, SlotRequests],
        budget: Budget,
        ask: Callable[[str, str, int], Awaitable[list[float]]],
    ) -> SlotRequests:
        requests = served.get(budget)
        if requests is None:
            requests = served[budget] = SlotRequests(partial(ask, *budget))
        return requests

    async def push_back(
        self, tenant: str, region: str, *, retry_after: float | None, rate_limited: bool
    ) -> None:
        """Basware answered 429 (rate_limited: the rate halves) or 503 with a Retry-After."""
        if retry_after is not None:
            # Known to this process at once, before the statement below has run.
            budget = (tenant, region)
            until = time.monotonic() + retry_after
            self._blocked_until[budget] = max(self._blocked_until.get(budget, 0.0), until)
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
