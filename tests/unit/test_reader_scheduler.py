"""visma-reader's scheduler without Visma: early polls coalesced per connection, and
connections added or removed while it runs (issue 17, items 4 and 5)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from mlconnector.basware import BaswareCredentials
from mlconnector.connections import Connection, ConnectionNotFound
from mlconnector.contracts import Entity
from mlconnector.schedule import IntervalSchedule
from mlconnector.vault import VaultError
from mlconnector.visma import VismaCredentials
from visma_reader.leases import Renewal, Tenure, fair_share, rebalance
from visma_reader.scheduler import (
    ConnectionPoller,
    PollScheduler,
    next_early_cycle,
    widest,
)

NEVER = IntervalSchedule(seconds=3600)
LEASE_SECONDS = 0.6
INTERVAL = timedelta(seconds=0.4)


def connection(company_id: str) -> Connection:
    return Connection(
        name=f"c{company_id}",
        visma=VismaCredentials(
            client_id="v",
            client_secret=SecretStr("v"),
            tenant_id=f"t{company_id}",
            company_id=company_id,
        ),
        basware=BaswareCredentials(client_id="b", client_secret=SecretStr("b")),
        # Three entities keep the cycles countable; reference data schedules the same way.
        entities=(Entity.SUPPLIER, Entity.PURCHASE_ORDER, Entity.SUPPLIER_INVOICE),
    )


class Connections:
    """A source whose connections change while the scheduler runs, and can fail to list."""

    def __init__(self, *connections: Connection) -> None:
        self.by_name = {c.name: c for c in connections}
        self.failing = False

    async def list(self) -> Sequence[Connection]:
        if self.failing:
            raise VaultError("secret x is sealed under master key k-new, which is not loaded")
        return list(self.by_name.values())

    async def get(self, name: str) -> Connection:
        try:
            return self.by_name[name]
        except KeyError:
            raise ConnectionNotFound(name) from None


def held(name: str) -> Tenure:
    """A tenure that never runs out."""
    return Tenure(name, "r1", 1, float("inf"))


class Lease:
    def __init__(self) -> None:
        self.holder: str | None = None
        self.epoch = 0
        self.expires_at = -float("inf")


class MemoryLeases:
    """The lease table's rules without a database (the real one: test_reader_leases.py);
    several instances share one table and one set of beats."""

    def __init__(
        self,
        instance: str,
        table: dict[str, Lease] | None = None,
        beats: dict[str, float] | None = None,
    ) -> None:
        self.instance = instance
        self.lease_seconds = LEASE_SECONDS
        self.table = {} if table is None else table
        self.beats = {} if beats is None else beats

    def sharing(self, instance: str) -> MemoryLeases:
        return MemoryLeases(instance, self.table, self.beats)

    async def renew(self, connections: Sequence[str]) -> Renewal:
        now = time.monotonic()
        self.beats[self.instance] = now
        held: dict[str, int] = {}
        for name in connections:
            lease = self.table.setdefault(name, Lease())
            if lease.holder == self.instance and lease.expires_at > now:
                lease.expires_at = now + self.lease_seconds
                held[name] = lease.epoch
        for name, lease in self.table.items():
            if lease.holder == self.instance and name not in connections:
                lease.holder = None
        live = sum(1 for at in self.beats.values() if at > now - self.lease_seconds)
        return Renewal(held=held, live_readers=live)

    async def acquire(self, connections: Sequence[str], count: int) -> dict[str, int]:
        now = time.monotonic()
        taken: dict[str, int] = {}
        for name in sorted(connections):
            lease = self.table[name]
            if len(taken) < count and (lease.holder is None or lease.expires_at <= now):
                lease.holder, lease.epoch = self.instance, lease.epoch + 1
                lease.expires_at = now + self.lease_seconds
                taken[name] = lease.epoch
        return taken

    async def release(self, connections: Sequence[str]) -> None:
        for name in connections:
            if self.table[name].holder == self.instance:
                self.table[name].holder = None

    async def leave(self) -> None:
        await self.release(list(self.table))
        self.beats.pop(self.instance, None)


class Polls:
    """The polls made: (connection name, entity, when), and a wait for one to come."""

    def __init__(self) -> None:
        self.made: list[tuple[str, Entity, float]] = []
        self._changed = asyncio.Event()

    async def __call__(self, connection: Connection, entity: Entity, tenure: Tenure) -> None:
        self.made.append((connection.name, entity, time.monotonic()))
        self._changed.set()

    async def until(self, done: Callable[[], bool]) -> None:
        # A guard against a hang, not a timed assertion; what changes without a poll (the
        # pollers running) is looked at again every 50 ms.
        async with asyncio.timeout(20):
            while not done():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=0.05)

    def of(self, name: str) -> list[Entity]:
        return [entity for made, entity, _ in self.made if made == name]


def test_two_early_polls_merge_into_the_wider() -> None:
    assert widest(Entity.SUPPLIER, Entity.SUPPLIER_INVOICE) is Entity.SUPPLIER_INVOICE
    assert widest(Entity.PURCHASE_ORDER, Entity.SUPPLIER) is Entity.PURCHASE_ORDER
    assert widest(Entity.SUPPLIER, None) is None


def test_an_early_cycle_waits_one_interval_after_the_last() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert next_early_cycle(None, now, INTERVAL) == now
    assert next_early_cycle(now - timedelta(seconds=1), now, INTERVAL) == now
    assert next_early_cycle(now - timedelta(seconds=0.1), now, INTERVAL) == now + (
        INTERVAL - timedelta(seconds=0.1)
    )


@pytest.fixture
async def poller() -> AsyncIterator[tuple[ConnectionPoller, Polls]]:
    polls = Polls()
    source = Connections(connection("1000001"))
    running = ConnectionPoller(
        "c1000001",
        "1000001",
        source,
        polls,
        held("c1000001"),
        default=NEVER,
        early_interval=INTERVAL,
    )
    task = asyncio.create_task(running.run())
    await polls.until(lambda: running.cycles == 1)  # the first, scheduled cycle
    yield running, polls
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_flood_of_notifications_makes_one_early_cycle_per_interval(
    poller: tuple[ConnectionPoller, Polls],
) -> None:
    running, polls = poller
    flood_started = time.monotonic()
    for number in range(100):
        running.wake(Entity.SUPPLIER if number % 2 else Entity.PURCHASE_ORDER)
        await asyncio.sleep(0.01)
    flood_seconds = time.monotonic() - flood_started
    # The last notification is polled for: once that cycle ran, nothing is pending.
    await polls.until(
        lambda: not running.early_pending and running.cycles == 1 + running.early_cycles
    )
    cycle_starts = [at for (_, entity, at) in polls.made[3:] if entity is Entity.SUPPLIER]
    assert len(cycle_starts) == running.early_cycles
    assert running.early_cycles <= flood_seconds / INTERVAL.total_seconds() + 2
    gaps = [b - a for a, b in itertools.pairwise(cycle_starts)]
    assert all(gap >= INTERVAL.total_seconds() * 0.95 for gap in gaps), gaps
    # Each early cycle polled the wider of the two entities, with what it depends on.
    assert {entity for _, entity, _ in polls.made[3:]} == {Entity.SUPPLIER, Entity.PURCHASE_ORDER}


async def test_a_hundred_notifications_at_once_are_one_early_cycle(
    poller: tuple[ConnectionPoller, Polls],
) -> None:
    running, polls = poller
    for _ in range(100):
        running.wake(Entity.SUPPLIER)
    await polls.until(lambda: running.early_cycles == 1 and not running.early_pending)
    running.wake(Entity.SUPPLIER)  # a later one: polled, but one interval after the first
    await polls.until(lambda: running.early_cycles == 2 and len(polls.made) == 5)
    (first, second) = [at for _, _, at in polls.made[3:]]
    assert polls.of("c1000001")[3:] == [Entity.SUPPLIER, Entity.SUPPLIER]
    assert second - first >= INTERVAL.total_seconds() * 0.95


async def test_connections_added_and_removed_while_running_are_followed() -> None:
    polls = Polls()
    source = Connections(connection("1000001"))

    def make(c: Connection, tenure: Tenure) -> ConnectionPoller:
        return ConnectionPoller(
            c.name, c.tenant, source, polls, tenure, default=NEVER, early_interval=INTERVAL
        )

    scheduler = PollScheduler(source, make, refresh=0.2, leases=MemoryLeases("r1"))
    task = asyncio.create_task(scheduler.run())
    try:
        await polls.until(lambda: len(polls.of("c1000001")) == 3)
        source.by_name["c1000002"] = connection("1000002")
        await polls.until(lambda: len(polls.of("c1000002")) == 3)
        assert {p.tenant for p in scheduler.pollers} == {"1000001", "1000002"}

        # A store that cannot be read (a master key not loaded yet) stops no poller.
        source.failing = True
        assert await scheduler.wake("1000002", Entity.SUPPLIER)
        await polls.until(lambda: len(polls.of("c1000002")) == 4)
        source.failing = False

        del source.by_name["c1000001"]
        await polls.until(lambda: {p.tenant for p in scheduler.pollers} == {"1000002"})
        assert not await scheduler.wake("1000001", Entity.SUPPLIER)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_notification_for_a_tenant_not_known_yet_reads_the_connections_at_once() -> None:
    polls = Polls()
    source = Connections(connection("1000001"))

    def make(c: Connection, tenure: Tenure) -> ConnectionPoller:
        return ConnectionPoller(
            c.name, c.tenant, source, polls, tenure, default=NEVER, early_interval=INTERVAL
        )

    scheduler = PollScheduler(source, make, refresh=3600, leases=MemoryLeases("r1"))
    task = asyncio.create_task(scheduler.run())
    try:
        await polls.until(lambda: len(polls.of("c1000001")) == 3)
        source.by_name["c1000003"] = connection("1000003")
        assert not await scheduler.wake("1000003", Entity.SUPPLIER)
        await polls.until(lambda: len(polls.of("c1000003")) == 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_disabled_connection_is_not_polled_even_when_woken() -> None:
    polls = Polls()
    disabled = connection("1000001").model_copy(update={"enabled": False})
    running = ConnectionPoller(
        disabled.name,
        disabled.tenant,
        Connections(disabled),
        polls,
        held(disabled.name),
        default=IntervalSchedule(seconds=0.05),
        early_interval=INTERVAL,
    )
    task = asyncio.create_task(running.run())
    try:
        running.wake(None)
        await polls.until(lambda: running.early_cycles == 1)  # the early cycle came and went
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert polls.made == []


def test_each_reader_caps_itself_at_its_fair_share() -> None:
    assert fair_share(50, 3) == 17
    assert fair_share(50, 0) == 50
    assert rebalance(["c3", "c1", "c2"], 4, 2) == (["c3"], 0)
    assert rebalance(["c1"], 5, 2) == ([], 2)


async def test_two_readers_share_the_connections_and_one_takes_over_when_the_other_stops() -> None:
    polls = Polls()
    source = Connections(*(connection(str(1000001 + n)) for n in range(6)))

    def make(c: Connection, tenure: Tenure) -> ConnectionPoller:
        return ConnectionPoller(
            c.name,
            c.tenant,
            source,
            polls,
            tenure,
            default=IntervalSchedule(seconds=0.05),
            early_interval=INTERVAL,
        )

    first_leases = MemoryLeases("r1")
    first = PollScheduler(source, make, refresh=0.1, leases=first_leases)
    second = PollScheduler(source, make, refresh=0.1, leases=first_leases.sharing("r2"))
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        await polls.until(lambda: len(first.pollers) == 3 and len(second.pollers) == 3)
        names = {p.name for p in first.pollers} | {p.name for p in second.pollers}
        assert names == set(source.by_name)
        tasks[1].cancel()
        await asyncio.gather(tasks[1], return_exceptions=True)
        await polls.until(lambda: len(first.pollers) == 6)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class MemoryHandoff:
    """The request table's rules without a database (the real one: test_early_poll_handoff.py);
    a request is announced to every scheduler listening, as a NOTIFY is."""

    def __init__(self) -> None:
        self.requests: dict[str, Entity | None] = {}
        self.listening: list[PollScheduler] = []

    async def request(self, connection: str, entity: Entity | None) -> None:
        asked = connection in self.requests
        self.requests[connection] = widest(self.requests[connection], entity) if asked else entity
        for scheduler in self.listening:
            scheduler.requested(connection)

    async def take(self, connections: Sequence[str]) -> dict[str, Entity | None]:
        return {c: self.requests.pop(c) for c in connections if c in self.requests}


async def test_a_notification_for_a_connection_the_other_reader_holds_wakes_that_reader() -> None:
    polls = Polls()
    source = Connections(*(connection(str(1000001 + n)) for n in range(2)))

    def make(c: Connection, tenure: Tenure) -> ConnectionPoller:
        return ConnectionPoller(
            c.name, c.tenant, source, polls, tenure, default=NEVER, early_interval=INTERVAL
        )

    handoff = MemoryHandoff()
    leases = MemoryLeases("r1")
    first = PollScheduler(source, make, refresh=0.1, leases=leases, handoff=handoff)
    second = PollScheduler(source, make, refresh=0.1, leases=leases.sharing("r2"), handoff=handoff)
    handoff.listening = [first, second]
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        await polls.until(lambda: len(first.pollers) == 1 and len(second.pollers) == 1)
        [theirs] = second.pollers
        assert await first.wake(theirs.tenant, Entity.SUPPLIER)
        await polls.until(lambda: theirs.early_cycles == 1)
        assert first.pollers[0].early_cycles == 0
        assert handoff.requests == {}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
