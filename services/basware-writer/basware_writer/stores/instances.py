"""Liveness of writer instances: what makes a claim honoured, and a dead writer's claims free.

An instance is alive while it beats (`writer_instances.seen_at`) and while its presence
lock is held (migration 012): a session-level advisory lock on a connection of the pool it
keeps for itself, which PostgreSQL drops the moment the process dies, however it died.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from mlconnector.instances import InstanceBeats


class InstanceRegistry:
    def __init__(self, pool: asyncpg.Pool, instance: str) -> None:
        self._pool = pool
        self._beats = InstanceBeats("writer_instances", instance)
        self.instance = instance
        self._presence: PoolConnectionProxy[asyncpg.Record] | None = None

    async def _hold_presence(self) -> None:
        """Takes the presence lock on a connection of its own, again if that one broke (the
        lock went with it: meanwhile this instance's claims may have been taken)."""
        if self._presence is not None and not self._presence.is_closed():
            return
        await self._drop_presence()
        conn = await self._pool.acquire()
        try:
            await conn.execute("SELECT writer_hold_presence($1)", self.instance)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._presence = conn

    async def _drop_presence(self) -> None:
        presence, self._presence = self._presence, None
        if presence is not None:
            # Closed, not handed back: the lock must not stay with a pooled session.
            presence.terminate()
            await self._pool.release(presence)

    async def beat(self) -> None:
        await self._hold_presence()
        async with self._pool.acquire() as conn, conn.transaction():
            await self._beats.beat(conn)
            await conn.execute(
                "UPDATE writer_instances SET holds_presence = true WHERE instance = $1",
                self.instance,
            )

    async def leave(self) -> None:
        """A clean stop: this instance's claims are free at once."""
        try:
            async with self._pool.acquire() as conn:
                await self._beats.leave(conn)
        finally:
            await self._drop_presence()
