"""Reading both sides of a connection and comparing them: the I/O edge of the reconciler.

Visma is read with the reader's client, every page counted in the company's quota plan
(docs/visma-net.md §8); Basware with its list routes, each page taking a slot of the request
budget every process that calls Basware shares (docs/basware-p2p.md §10.6). A 429 (or a
Retry-After) slows that budget, a 5xx or no answer waits a little, and the entity is read
again from its first page, a few times at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from mlconnector.basware.client import BaswareClient
from mlconnector.basware.errors import BaswareRateLimited, BaswareUnavailable
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.connections import Connection
from mlconnector.contracts import Entity
from mlconnector.visma.client import VismaClient
from reconciler.compare import EntityReport, Side, compare
from reconciler.entities import RECONCILED, ReconciledEntity

T = TypeVar("T")

# How often one entity's Basware side is read again after a 429, a 5xx or no answer.
BASWARE_READ_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = 0.5


class NoCompanyCode(ValueError):
    """The connection names no Basware company: there is nothing to compare against."""


class Pace(Protocol):
    async def before_call(self) -> None:
        """Returns once the next Basware call may go."""

    async def pushed_back(self, retry_after: float | None, *, rate_limited: bool) -> None:
        """Basware answered 429 (rate_limited) or 503."""


class BudgetPace:
    """The shared request budget of one connection's Basware tenant and region."""

    def __init__(self, budget: RateBudget, tenant: str, region: str) -> None:
        self._budget = budget
        self._tenant = tenant
        self._region = region

    async def before_call(self) -> None:
        await self._budget.take(self._tenant, self._region)

    async def pushed_back(self, retry_after: float | None, *, rate_limited: bool) -> None:
        await self._budget.push_back(
            self._tenant, self._region, retry_after=retry_after, rate_limited=rate_limited
        )


class Calls(BaseModel):
    """The list calls one reconcile made (a page each)."""

    visma: int = 0
    basware: int = 0


class ConnectionReport(BaseModel):
    connection: str
    tenant: str
    started_at: datetime
    finished_at: datetime
    calls: Calls
    entities: list[EntityReport]

    @property
    def all_equal(self) -> bool:
        return all(e.totals.all_equal for e in self.entities)


async def all_of(*work: Coroutine[Any, Any, T]) -> list[T]:
    """Runs the coroutines side by side. When one fails, the others are cancelled and awaited
    before its failure goes on (nothing is left half-way in the database or an HTTP call),
    as that failure itself, not as a group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(w) for w in work]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _paced(pages: AsyncIterator[T], pace: Pace, calls: Calls) -> AsyncIterator[T]:
    # A page is read when asked for, so taking the slot first paces the call itself.
    while True:
        await pace.before_call()
        calls.basware += 1
        try:
            page = await anext(pages)
        except StopAsyncIteration:
            return
        yield page


async def _visma_sides(
    spec: ReconciledEntity[Any, Any], visma: VismaClient, company_code: str, calls: Calls
) -> list[Side]:
    sides: list[Side] = []
    async for records in spec.visma_pages(visma):
        calls.visma += 1
        sides += [spec.visma_side(record, company_code) for record in records]
    return sides


async def _basware_sides(
    spec: ReconciledEntity[Any, Any],
    basware: BaswareClient,
    company_code: str,
    pace: Pace,
    calls: Calls,
) -> list[Side]:
    attempt = 1
    while True:
        try:
            sides: list[Side] = []
            async for records in _paced(spec.list_basware(basware, company_code), pace, calls):
                sides += [
                    spec.held(r) for r in records if spec.ours is None or spec.ours(r, company_code)
                ]
            return sides
        except (BaswareRateLimited, BaswareUnavailable) as exc:
            if attempt >= BASWARE_READ_ATTEMPTS:
                raise
            attempt += 1
            rate_limited = isinstance(exc, BaswareRateLimited)
            if rate_limited or exc.retry_after is not None:
                await pace.pushed_back(exc.retry_after, rate_limited=rate_limited)
            else:
                # No answer or a 5xx without Retry-After: not Basware asking everyone to slow
                # down, so this read alone waits a little.
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)


async def reconcile_entity(
    spec: ReconciledEntity[Any, Any],
    visma: VismaClient,
    basware: BaswareClient,
    company_code: str,
    pace: Pace,
    calls: Calls,
) -> EntityReport:
    visma_sides, basware_sides = await all_of(
        _visma_sides(spec, visma, company_code, calls),
        _basware_sides(spec, basware, company_code, pace, calls),
    )
    return compare(spec.entity.value, visma_sides, basware_sides, extras=spec.ours is not None)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while both sides are read: a reconcile allocates millions
    of small objects it keeps, and each collection walks them all again (the read of 11,000
    records took three times as long with it). What it would free is freed after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def entities_of(connection: Connection, only: Sequence[Entity] = ()) -> list[Entity]:
    """The connection's synced entities that are reconciled, in dependency order."""
    return [e for e in connection.entities if e in RECONCILED and (not only or e in only)]


async def reconcile_connection(
    connection: Connection,
    visma: VismaClient,
    basware: BaswareClient,
    pace: Pace,
    only: Sequence[Entity] = (),
) -> ConnectionReport:
    company_code = connection.basware_company_code
    if company_code is None:
        raise NoCompanyCode(f"connection {connection.name} has no Basware company code")
    started = datetime.now(UTC)
    calls = Calls()
    with collector_paused():
        reports = await all_of(
            *(
                reconcile_entity(RECONCILED[e], visma, basware, company_code, pace, calls)
                for e in entities_of(connection, only)
            )
        )
    return ConnectionReport(
        connection=connection.name,
        tenant=connection.tenant,
        started_at=started,
        finished_at=datetime.now(UTC),
        calls=calls,
        entities=list(reports),
    )


async def budget_pace(budget: RateBudget, connection: Connection, basware: BaswareClient) -> Pace:
    region = await basware.region()
    return BudgetPace(budget, connection.tenant, region.value)
