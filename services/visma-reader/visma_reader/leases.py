"""Which visma-reader polls which connection: one lease per connection in PostgreSQL.

Every reader beats a row of its own (`visma_reader_instance`) and renews the leases it holds
on each beat. The live readers are those whose row is fresher than the lease timeout; each
caps itself at its fair share, ceil(connections / live readers): a reader that holds more
releases the excess (after its pollers stopped), one that holds less takes leases that are
free or expired. A reader that dies stops renewing, so its leases expire after the timeout
and the others take them over; a reader that stops cleanly releases them at once.

Each new holder raises the lease's epoch, and every cursor write carries the epoch of the
poller that makes it (cursor_store.py): the statement writes only while the lease row still
names this holder with that epoch, so a reader that stalled past the timeout and resumed can
re-read and re-publish (deduped downstream) but never move a cursor. Between two writes, a
poller also stops by itself once its tenure would have expired, counted from the start of its
last renewal on this machine's monotonic clock; the database's expiry, counted from when the
renewal reached it, is never earlier. README's "Several readers" says why a lease in
PostgreSQL rather than Kafka's group assignment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg
from pydantic import BaseModel

from mlconnector.instances import InstanceBeats


class LeaseLost(Exception):
    """This reader no longer holds the connection's lease: its poller stops."""


@dataclass
class Tenure:
    """This reader's hold on one connection's lease."""

    connection: str
    holder: str
    epoch: int
    # time.monotonic() until which the lease is this reader's for sure.
    valid_until: float

    def valid(self) -> bool:
        return time.monotonic() < self.valid_until

    def check(self) -> None:
        if not self.valid():
            raise LeaseLost(f"the lease of connection {self.connection} was not renewed in time")


class Renewal(BaseModel):
    """One beat's answer: the leases still held (connection -> epoch) and the live readers."""

    held: dict[str, int]
    live_readers: int


def fair_share(connections: int, live_readers: int) -> int:
    """How many connections one reader may hold."""
    return math.ceil(connections / max(1, live_readers))


def rebalance(held: Sequence[str], connections: int, live_readers: int) -> tuple[list[str], int]:
    """The leases to release and how many to take, so that this reader holds its fair share."""
    share = fair_share(connections, live_readers)
    ordered = sorted(held)
    return ordered[share:], max(0, share - len(ordered))


class LeaseStore:
    def __init__(self, pool: asyncpg.Pool, instance: str, lease_seconds: float) -> None:
        self._pool = pool
        self._beats = InstanceBeats("visma_reader_instance", instance)
        self.instance = instance
        self.lease_seconds = lease_seconds

    async def renew(self, connections: Sequence[str]) -> Renewal:
        """Beats this reader's row, makes a lease row for each connection that has none,
        releases what this reader holds of connections no longer listed, and renews the rest
        of what it holds while not expired."""
        names = list(connections)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._beats.beat(conn)
            await conn.execute(
                "INSERT INTO visma_connection_lease (connection)"
                " SELECT unnest($1::text[]) ON CONFLICT (connection) DO NOTHING",
                names,
            )
            await conn.execute(
                "UPDATE visma_connection_lease SET holder = NULL, expires_at = now()"
                " WHERE holder = $1 AND connection <> ALL($2::text[])",
                self.instance,
                names,
            )
            rows = await conn.fetch(
                """
                UPDATE visma_connection_lease
                   SET expires_at = now() + make_interval(secs => $2)
                 WHERE holder = $1 AND connection = ANY($3::text[]) AND expires_at > now()
                RETURNING connection, epoch
                """,
                self.instance,
                self.lease_seconds,
                names,
            )
            live: int = await conn.fetchval(
                "SELECT count(*) FROM visma_reader_instance"
                " WHERE seen_at > now() - make_interval(secs => $1)",
                self.lease_seconds,
            )
        return Renewal(held={r["connection"]: r["epoch"] for r in rows}, live_readers=live)

    async def acquire(self, connections: Sequence[str], count: int) -> Mapping[str, int]:
        """Takes up to `count` of these connections' leases that are free or expired, each
        with a new epoch; returns connection -> epoch."""
        if count <= 0:
            return {}
        rows = await self._pool.fetch(
            """
            UPDATE visma_connection_lease l
               SET holder = $1, epoch = l.epoch + 1,
                   expires_at = now() + make_interval(secs => $2)
              FROM (SELECT connection FROM visma_connection_lease
                     WHERE connection = ANY($3::text[])
                       AND (holder IS NULL OR expires_at <= now())
                     ORDER BY connection LIMIT $4
                     FOR UPDATE SKIP LOCKED) free
             WHERE l.connection = free.connection
            RETURNING l.connection, l.epoch
            """,
            self.instance,
            self.lease_seconds,
            list(connections),
            count,
        )
        return {r["connection"]: r["epoch"] for r in rows}

    async def release(self, connections: Sequence[str]) -> None:
        """Frees these leases now: called once their pollers stopped."""
        await self._pool.execute(
            "UPDATE visma_connection_lease SET holder = NULL, expires_at = now()"
            " WHERE holder = $1 AND connection = ANY($2::text[])",
            self.instance,
            list(connections),
        )

    async def leave(self) -> None:
        """A clean stop: every lease of this reader is free at once, and it counts no more."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE visma_connection_lease SET holder = NULL, expires_at = now()"
                " WHERE holder = $1",
                self.instance,
            )
            await self._beats.leave(conn)
