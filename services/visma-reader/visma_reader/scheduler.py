"""Runs the poll cycles of each connection: on its schedule, and early when woken.

Each connection has its own task, so one tenant's failure or rate limit never stalls another.
A cycle polls the due entities in dependency order (suppliers, then purchase orders with
their receipts, then invoices) so that Kafka's per-key order is vendor before PO before
invoice. The connection is read again from its source before every cycle: a schedule changed
with `mlconnector connections schedule` applies without a restart. The scheduler reads the
list of connections again every `refresh`, so a connection added or removed while the reader
runs is polled, or left alone, without a restart.

Notifications only make polls early, and early polls are coalesced: a connection runs at
most one early cycle per `early_interval`; notifications in between merge into the next one.
Its worst case (one cycle of every entity, four Visma calls) bounds what a flood of valid
notifications can spend of Visma's hourly quota (docs/visma-api.md §8.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from mlconnector.connection_store import READ_FAILURES
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
from visma_reader.poll_gate import PollInterrupted

log = logging.getLogger(__name__)

PollEntity = Callable[[Connection, Entity], Awaitable[None]]
# How often a sleeping poller looks at its schedule again, so that edits apply promptly.
SCHEDULE_REFRESH_SECONDS = 5.0
# A notification for a tenant not known yet reads the connections again, at most this often.
LOOK_AGAIN_SECONDS = 1.0


def entities_up_to(entity: Entity | None, enabled: Sequence[Entity]) -> list[Entity]:
    """An early poll for an entity also polls what it depends on, so order holds."""
    last = ALL_ENTITIES.index(entity) if entity is not None else len(ALL_ENTITIES) - 1
    return [e for e in ALL_ENTITIES[: last + 1] if e in enabled]


def widest(requested: Entity | None, more: Entity | None) -> Entity | None:
    """Two early polls merged into one: the later entity in dependency order (None: all)."""
    if requested is None or more is None:
        return None
    return max(requested, more, key=ALL_ENTITIES.index)


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` passed. Not asyncio.wait_for: on Python 3.11 it can
    swallow a cancellation that arrives as the event is set, and the loop never stops."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def next_early_cycle(last_early: datetime | None, now: datetime, interval: timedelta) -> datetime:
    """When a connection may run its next early cycle: now, or one interval after its last."""
    return now if last_early is None else max(now, last_early + interval)


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
        early_interval: timedelta,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.tenant = tenant
        self._source = source
        self._poll = poll
        self._default = default
        self._early_interval = early_interval
        self._backoff = backoff or Backoff(base_seconds=1.0, cap_seconds=60.0, max_attempts=10**9)
        self._wake = asyncio.Event()
        # An early poll is pending while `_early_pending`; `_early` is its widest entity.
        self._early_pending = False
        self._early: Entity | None = None
        self._last_early: datetime | None = None
        self._last_runs: dict[tuple[str, Entity], datetime] = {}
        self._connection: Connection | None = None
        self.cycles = 0
        self.early_cycles = 0

    @property
    def early_pending(self) -> bool:
        return self._early_pending

    def wake(self, entity: Entity | None) -> None:
        self._early = widest(self._early, entity) if self._early_pending else entity
        self._early_pending = True
        self._wake.set()

    def _take_early(self, connection: Connection, now: datetime) -> list[Entity] | None:
        """The entities of the pending early poll, if one is pending and may run now."""
        if not self._early_pending:
            return None
        if next_early_cycle(self._last_early, now, self._early_interval) > now:
            return None
        self._early_pending = False
        self._last_early = now
        self.early_cycles += 1
        # A disabled connection is not polled, woken or not.
        return entities_up_to(self._early, connection.entities) if connection.enabled else []

    async def _current(self) -> Connection:
        """The connection as stored now; the one read last while the store cannot be read
        (a master key rotation under way, the database restarting), so polls go on."""
        try:
            self._connection = await self._source.get(self.name)
        except READ_FAILURES as error:
            if self._connection is None:
                raise
            log.error("connection %s not re-read, polling as before: %s", self.name, error)
        return self._connection

    async def run(self) -> None:
        failures = 0
        while True:
            delay = SCHEDULE_REFRESH_SECONDS
            self._wake.clear()
            try:
                connection = await self._current()
                now = datetime.now(UTC)
                early = self._take_early(connection, now)
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
                due_at = [next_poll_at(connection, self._last_runs, now, self._default)]
                if self._early_pending:
                    due_at.append(next_early_cycle(self._last_early, now, self._early_interval))
                for at in due_at:
                    if at is not None:
                        until = (at - datetime.now(UTC)).total_seconds()
                        delay = max(0.0, min(delay, until))
            except asyncio.CancelledError:
                raise
            except PollInterrupted:
                # Its cursor stayed: the cycle runs again once the recovery let it through.
                log.info("polls of connection %s stopped for a broker recovery", self.name)
                delay = 0.0
            except Exception:
                failures += 1
                delay = self._backoff.delay(failures)
                log.exception("poll of connection %s failed; next try in %.1f s", self.name, delay)
            await wait_or_timeout(self._wake, delay)


MakePoller = Callable[[Connection], ConnectionPoller]


class PollScheduler:
    """One poller per connection, found by tenant: a notification wakes its tenant's.

    `run` (one of visma-reader's loops) reads the connections every `refresh` and starts a
    poller for each new one and stops the poller of each one removed; a notification for a
    tenant it does not know yet makes it read them at once. A failed read keeps the pollers
    it has (the store down, a master key not loaded yet)."""

    def __init__(self, source: ConnectionSource, make_poller: MakePoller, refresh: float) -> None:
        self._source = source
        self._make_poller = make_poller
        self._refresh = refresh
        self._by_tenant: dict[str, ConnectionPoller] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._look_again = asyncio.Event()
        self._listed = False

    @property
    def pollers(self) -> list[ConnectionPoller]:
        return list(self._by_tenant.values())

    def wake(self, tenant: str, entity: Entity | None) -> bool:
        poller = self._by_tenant.get(tenant)
        if poller is None:
            self._look_again.set()
            return False
        poller.wake(entity)
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._look_again.clear()
                read_at = loop.time()
                try:
                    self._follow(await self._source.list())
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    # A secret cannot be opened or the store does not answer: the pollers
                    # running go on, and the next read may succeed.
                    log.error("connections not re-read, the pollers stay: %s", error)
                await wait_or_timeout(self._look_again, self._refresh)
                # Notifications for unknown tenants never make more than one read a second.
                await asyncio.sleep(max(0.0, read_at + LOOK_AGAIN_SECONDS - loop.time()))
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _follow(self, connections: Sequence[Connection]) -> None:
        wanted = {c.name: c for c in connections}
        for name in [n for n in self._tasks if n not in wanted]:
            log.info("connection %s removed: its polls stop", name)
            self._tasks.pop(name).cancel()
            self._by_tenant = {t: p for t, p in self._by_tenant.items() if p.name != name}
        for name, connection in wanted.items():
            if name in self._tasks:
                continue
            if self._listed:
                log.info("connection %s added: polling it", name)
            poller = self._make_poller(connection)
            self._by_tenant[poller.tenant] = poller
            self._tasks[name] = asyncio.create_task(poller.run(), name=f"poll:{name}")
        self._listed = True
