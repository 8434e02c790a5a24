"""Runs the poll cycles of each connection: on its schedule, and at once when woken.

Each connection has its own task, so one tenant's failure or rate limit never stalls another.
A cycle polls the due entities in dependency order (suppliers, then purchase orders with
their receipts, then invoices) so that Kafka's per-key order is vendor before PO before
invoice. The connection is read again from its source before every cycle: a schedule changed
with `mlconnector connections schedule` applies without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from mlconnector.connections import (
    ALL_ENTITIES,
    Connection,
    ConnectionSource,
    due_entities,
    next_poll_at,
)
from mlconnector.contracts import Entity
from mlconnector.retry import Backoff
from mlconnector.schedule import CronSchedule, IntervalSchedule

log = logging.getLogger(__name__)

PollEntity = Callable[[Connection, Entity], Awaitable[None]]
# How often a sleeping poller looks at its schedule again, so that edits apply promptly.
SCHEDULE_REFRESH_SECONDS = 5.0


def entities_up_to(entity: Entity | None, enabled: Sequence[Entity]) -> list[Entity]:
    """An early poll for an entity also polls what it depends on, so order holds."""
    last = ALL_ENTITIES.index(entity) if entity is not None else len(ALL_ENTITIES) - 1
    return [e for e in ALL_ENTITIES[: last + 1] if e in enabled]


class ConnectionPoller:
    """The poll loop of one connection."""

    def __init__(
        self,
        name: str,
        tenant: str,
        source: ConnectionSource,
        poll: PollEntity,
        *,
        default: IntervalSchedule | CronSchedule,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.tenant = tenant
        self._source = source
        self._poll = poll
        self._default = default
        self._backoff = backoff or Backoff(base_seconds=1.0, cap_seconds=60.0, max_attempts=10**9)
        self._wake = asyncio.Event()
        self._early: Entity | None = None
        self._last_runs: dict[tuple[str, Entity], datetime] = {}
        self.cycles = 0

    def wake(self, entity: Entity | None) -> None:
        # Notifications that arrive before the next cycle merge into the widest early poll;
        # None means every entity.
        if not self._wake.is_set():
            self._early = entity
        elif self._early is not None:
            self._early = (
                None if entity is None else max(self._early, entity, key=ALL_ENTITIES.index)
            )
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        early: list[Entity] | None = None
        while True:
            delay = SCHEDULE_REFRESH_SECONDS
            try:
                connection = await self._source.get(self.name)
                now = datetime.now(UTC)
                due = (
                    early
                    if early is not None
                    else due_entities(connection, self._last_runs, now, self._default)
                )
                for entity in due:
                    await self._poll(connection, entity)
                    self._last_runs[(self.name, entity)] = now
                if due:
                    self.cycles += 1
                failures = 0
                next_at = next_poll_at(connection, self._last_runs, now, self._default)
                if next_at is not None:
                    until = (next_at - datetime.now(UTC)).total_seconds()
                    delay = max(0.0, min(delay, until))
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = self._backoff.delay(failures)
                log.exception("poll of connection %s failed; next try in %.1f s", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            early = None
            if self._wake.is_set():
                woken = await self._source.get(self.name)
                # A disabled connection is not polled, however it is woken.
                early = entities_up_to(self._early, woken.entities) if woken.enabled else []
                self._wake.clear()
                self._early = None


class PollScheduler:
    """The pollers, one per connection, found by tenant: a notification wakes its tenant's.
    Each poller's `run` is one of visma-reader's loops (its lifecycle runs them)."""

    def __init__(self, pollers: Sequence[ConnectionPoller]) -> None:
        self._by_tenant = {p.tenant: p for p in pollers}

    @property
    def pollers(self) -> list[ConnectionPoller]:
        return list(self._by_tenant.values())

    def add(self, poller: ConnectionPoller) -> None:
        self._by_tenant[poller.tenant] = poller

    def remove(self, tenant: str) -> ConnectionPoller | None:
        return self._by_tenant.pop(tenant, None)

    def tenants(self) -> set[str]:
        return set(self._by_tenant)

    def wake(self, tenant: str, entity: Entity | None) -> bool:
        poller = self._by_tenant.get(tenant)
        if poller is None:
            return False
        poller.wake(entity)
        return True
