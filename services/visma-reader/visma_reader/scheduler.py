"""Runs the poll cycles of each connection: on its schedule, and early when woken.

Each connection has its own task, so one tenant's failure or rate limit never stalls another.
A cycle polls the due entities in dependency order (suppliers, then purchase orders with
their receipts, then invoices) so that Kafka's per-key order is vendor before PO before
invoice. The connection is read again from its source before every cycle: a schedule changed
with `mlconnector connections schedule` applies without a restart. The scheduler reads the
list of connections again every `refresh`, so a connection added or removed while the reader
runs is polled, or left alone, without a restart. Several readers share the connections: each
polls only those whose lease it holds (leases.py), and a poller stops once its lease is lost;
a notification for a connection another reader holds is handed to that reader (handoff.py).

Notifications only make polls early, and early polls are coalesced: a connection runs at
most one early cycle per `early_interval`; notifications in between merge into the next one.
Its worst case (one cycle of every entity, four Visma calls) bounds what a flood of valid
notifications can spend of Visma's hourly quota (docs/visma-net.md §8.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

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
from visma_reader.leases import LeaseLost, Renewal, Tenure, rebalance
from visma_reader.poll_gate import PollInterrupted

log = logging.getLogger(__name__)

PollEntity = Callable[[Connection, Entity, Tenure], Awaitable[None]]
# How often a sleeping poller looks at its schedule again, so that edits apply promptly.
SCHEDULE_REFRESH_SECONDS = 5.0
# A notification for a tenant not known yet reads the connections again, at most this often.
LOOK_AGAIN_SECONDS = 1.0
# Leases are renewed this many times per lease timeout: a renewal may fail or come late twice
# before a live reader loses its leases.
RENEWALS_PER_LEASE = 3


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
        tenure: Tenure,
        *,
        default: IntervalSchedule | CronSchedule,
        early_interval: timedelta,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.tenant = tenant
        self._source = source
        self._poll = poll
        self.tenure = tenure
        self._default = default
        self._early_interval = early_interval
        self._backoff = backoff or Backoff(base_seconds=1.0, cap_seconds=60.0, max_attempts=None)
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
                    self.tenure.check()
                    await self._poll(connection, entity, self.tenure)
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
            except LeaseLost as lost:
                # Its cursor stayed: whichever reader holds the lease next polls from there.
                log.info("polls of connection %s stop here: %s", self.name, lost)
                return
            except PollInterrupted:
                # Its cursor stayed: the cycle runs again once the recovery let it through.
                log.info("polls of connection %s stopped for a broker recovery", self.name)
                delay = 0.0
            except Exception:
                failures += 1
                delay = self._backoff.delay(failures)
                log.exception("poll of connection %s failed; next try in %.1f s", self.name, delay)
            await wait_or_timeout(self._wake, delay)


MakePoller = Callable[[Connection, Tenure], ConnectionPoller]


class ConnectionLeases(Protocol):
    """The leases that share the connections between readers (leases.LeaseStore)."""

    @property
    def instance(self) -> str: ...

    @property
    def lease_seconds(self) -> float: ...

    async def renew(self, connections: Sequence[str]) -> Renewal: ...

    async def acquire(self, connections: Sequence[str], count: int) -> Mapping[str, int]: ...

    async def release(self, connections: Sequence[str]) -> None: ...

    async def leave(self) -> None: ...


class EarlyPollHandoff(Protocol):
    """Early polls asked of the reader holding a connection's lease (handoff.py)."""

    async def request(self, connection: str, entity: Entity | None) -> None: ...

    async def take(self, connections: Sequence[str]) -> Mapping[str, Entity | None]: ...


class PollScheduler:
    """One poller per connection whose lease this reader holds, found by tenant: a
    notification wakes its tenant's.

    `run` (one of visma-reader's loops) reads the connections every `refresh` and, between
    reads, renews its leases RENEWALS_PER_LEASE times per lease timeout: it stops the poller
    of each connection removed or whose lease it lost, releases what exceeds its fair share
    and takes free or expired leases up to it, starting a poller for each. A notification for
    a tenant it does not know yet makes it read the connections at once; one for a connection
    another reader holds goes to it through `handoff`, and the requests handed to this reader
    are taken when `requested` is called (a NOTIFY) and on every renewal. A failed read keeps
    the pollers it has (the store down, a master key not loaded yet); a failed renewal too,
    until their tenures run out and they stop by themselves."""

    def __init__(
        self,
        source: ConnectionSource,
        make_poller: MakePoller,
        refresh: float,
        leases: ConnectionLeases,
        stopped: Callable[[str], Awaitable[None]] | None = None,
        handoff: EarlyPollHandoff | None = None,
    ) -> None:
        """`stopped` is called with a connection's name once its poller stopped; without
        `handoff`, a notification for a connection another reader holds is left to its
        schedule."""
        self._source = source
        self._make_poller = make_poller
        self._refresh = refresh
        self._leases = leases
        self._stopped = stopped
        self._handoff = handoff
        self._pollers: dict[str, ConnectionPoller] = {}
        self._by_tenant: dict[str, ConnectionPoller] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Tenant -> connection name, of every connection listed, held here or not.
        self._known: dict[str, str] = {}
        self._look_again = asyncio.Event()
        self._requested = asyncio.Event()
        self._listed = False

    @property
    def pollers(self) -> list[ConnectionPoller]:
        return list(self._pollers.values())

    async def wake(self, tenant: str, entity: Entity | None) -> bool:
        """False for a tenant no connection has (yet); a tenant polled by another reader gets
        its early poll from that reader."""
        poller = self._by_tenant.get(tenant)
        if poller is not None:
            poller.wake(entity)
            return True
        name = self._known.get(tenant)
        if name is None:
            self._look_again.set()
            return False
        if self._handoff is not None:
            try:
                await self._handoff.request(name, entity)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The holder's scheduled poll still comes.
                log.error("early poll of connection %s not handed over: %s", name, error)
        return True

    def requested(self, connection: str | None) -> None:
        """Another reader asked for an early poll of `connection` (None: of any held here)."""
        if connection is None or connection in self._pollers:
            self._requested.set()

    async def _take_requests(self) -> None:
        if self._handoff is None:
            return
        for name, entity in (await self._handoff.take(list(self._pollers))).items():
            poller = self._pollers.get(name)
            if poller is not None:
                poller.wake(entity)

    async def _take_requested(self) -> None:
        while True:
            await self._requested.wait()
            self._requested.clear()
            try:
                await self._take_requests()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("early polls asked by other readers not taken yet: %s", error)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        beat = self._leases.lease_seconds / RENEWALS_PER_LEASE
        connections: Sequence[Connection] | None = None
        listed_at = -math.inf
        taking = asyncio.create_task(self._take_requested(), name="early-poll-requests")
        try:
            while True:
                looked_again = self._look_again.is_set()
                self._look_again.clear()
                read_at = loop.time()
                if looked_again or read_at >= listed_at + self._refresh:
                    try:
                        connections = await self._source.list()
                        listed_at = read_at
                        self._known = {c.tenant: c.name for c in connections}
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:
                        # A secret cannot be opened or the store does not answer: the pollers
                        # running go on, and the next read may succeed.
                        log.error("connections not re-read, the pollers stay: %s", error)
                if connections is not None:
                    try:
                        await self._balance(connections)
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:
                        log.error("leases not renewed, the pollers stay while valid: %s", error)
                await wait_or_timeout(self._look_again, min(self._refresh, beat))
                # Notifications for unknown tenants never make more than one read a second.
                await asyncio.sleep(max(0.0, read_at + LOOK_AGAIN_SECONDS - loop.time()))
        finally:
            taking.cancel()
            await asyncio.gather(taking, return_exceptions=True)
            await self._stop(list(self._tasks))
            with contextlib.suppress(Exception):
                await self._leases.leave()

    async def _balance(self, connections: Sequence[Connection]) -> None:
        wanted = {c.name: c for c in connections}
        renewed_at = time.monotonic()
        renewal = await self._leases.renew(list(wanted))
        valid_until = renewed_at + self._leases.lease_seconds
        gone = [
            name
            for name, poller in self._pollers.items()
            if renewal.held.get(name) != poller.tenure.epoch or self._tasks[name].done()
        ]
        for name in gone:
            if name not in wanted:
                log.info("connection %s removed: its polls stop", name)
        await self._stop(gone)
        for poller in self._pollers.values():
            poller.tenure.valid_until = valid_until
        release, wanting = rebalance(list(renewal.held), len(wanted), renewal.live_readers)
        if release:
            log.info("releasing %d leases to the other readers: %s", len(release), release)
            await self._stop(release)
            await self._leases.release(release)
        held = {name: epoch for name, epoch in renewal.held.items() if name not in release}
        if wanting:
            taking_at = time.monotonic()
            free = [name for name in wanted if name not in held]
            acquired = await self._leases.acquire(free, wanting)
            for name, epoch in acquired.items():
                held[name] = epoch
                self._start(wanted[name], epoch, taking_at + self._leases.lease_seconds)
        for name, epoch in held.items():
            if name not in self._tasks:
                self._start(wanted[name], epoch, valid_until)
        self._listed = True
        # What a NOTIFY lost (nobody listening) or a new lease brings is taken here.
        await self._take_requests()

    def _start(self, connection: Connection, epoch: int, valid_until: float) -> None:
        if self._listed:
            log.info("connection %s: polling it (lease epoch %d)", connection.name, epoch)
        tenure = Tenure(connection.name, self._leases.instance, epoch, valid_until)
        poller = self._make_poller(connection, tenure)
        self._pollers[connection.name] = poller
        self._by_tenant[poller.tenant] = poller
        self._tasks[connection.name] = asyncio.create_task(
            poller.run(), name=f"poll:{connection.name}"
        )

    async def _stop(self, names: Sequence[str]) -> None:
        tasks = [self._tasks.pop(name) for name in names if name in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in names:
            poller = self._pollers.pop(name, None)
            if poller is not None and self._by_tenant.get(poller.tenant) is poller:
                del self._by_tenant[poller.tenant]
            if self._stopped is not None:
                await self._stopped(name)
