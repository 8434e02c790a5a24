"""The connection leases of visma-reader on the real PostgreSQL (issue 21, item 1): readers
take disjoint shares, a dead reader's leases are taken over with a new epoch once they
expired, and a cursor write under a stale epoch is refused by its own statement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from mlconnector.migrations import apply_migrations
from visma_reader.cursor_store import CursorStore
from visma_reader.leases import LeaseLost, LeaseStore, Tenure

pytestmark = pytest.mark.integration

CONNECTIONS = [f"c{n}" for n in range(5)]
LEASE_SECONDS = 1.0


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "visma_reader", owner="visma-reader")
    yield pool
    await pool.close()


async def expired(pool: asyncpg.Pool, connection: str) -> None:
    """Waits until the database says the lease expired; the guard only stops a hang."""
    async with asyncio.timeout(30):
        while not await pool.fetchval(
            "SELECT expires_at <= now() FROM visma_connection_lease WHERE connection = $1",
            connection,
        ):
            await asyncio.sleep(0.05)


async def test_a_dead_readers_leases_are_taken_over_and_its_cursor_writes_refused(
    pool: asyncpg.Pool,
) -> None:
    first = LeaseStore(pool, "reader-1", LEASE_SECONDS)
    second = LeaseStore(pool, "reader-2", 3600)
    assert (await first.renew(CONNECTIONS)).live_readers == 1
    taken = await first.acquire(CONNECTIONS, 3)
    assert sorted(taken) == ["c0", "c1", "c2"]
    renewal = await second.renew(CONNECTIONS)
    assert renewal.live_readers == 2
    assert renewal.held == {}
    # Held leases are not free: the second reader gets the rest only.
    assert sorted(await second.acquire(CONNECTIONS, 5)) == ["c3", "c4"]

    cursors = CursorStore(pool)
    stamp = datetime(2026, 11, 2, 8, 30)
    old = Tenure("c0", "reader-1", taken["c0"], float("inf"))
    await cursors.advance("1000001", "supplier", stamp, tenure=old)

    # The first reader stops beating (killed): once its lease expired, the second takes it.
    await expired(pool, "c0")
    takeover = await second.acquire(CONNECTIONS, 5)
    assert sorted(takeover) == ["c0", "c1", "c2"]
    assert takeover["c0"] == taken["c0"] + 1
    assert (await second.renew(CONNECTIONS)).held.keys() == set(CONNECTIONS)

    # The first reader resumes: its renewal holds nothing, its cursor write is refused.
    assert (await first.renew(CONNECTIONS)).held == {}
    with pytest.raises(LeaseLost):
        await cursors.advance("1000001", "supplier", stamp.replace(hour=9), tenure=old)
    assert (await cursors.cursor("1000001", "supplier")).high_water == stamp
    new = Tenure("c0", "reader-2", takeover["c0"], float("inf"))
    await cursors.fenced(new).advance("1000001", "supplier", stamp.replace(hour=10))
    assert (await cursors.cursor("1000001", "supplier")).high_water == stamp.replace(hour=10)


async def test_a_reader_that_leaves_frees_its_leases_at_once(pool: asyncpg.Pool) -> None:
    first = LeaseStore(pool, "reader-1", 3600)
    second = LeaseStore(pool, "reader-2", 3600)
    await first.renew(CONNECTIONS)
    assert len(await first.acquire(CONNECTIONS, 5)) == 5
    await first.leave()
    assert (await second.renew(CONNECTIONS)).live_readers == 1
    assert len(await second.acquire(CONNECTIONS, 5)) == 5
    # A connection no longer listed is released by its holder's next renewal.
    renewal = await second.renew(CONNECTIONS[1:])
    assert set(renewal.held) == set(CONNECTIONS[1:])
    assert (
        await pool.fetchval("SELECT holder FROM visma_connection_lease WHERE connection = 'c0'")
        is None
    )
