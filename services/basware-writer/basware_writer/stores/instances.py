"""Liveness of writer instances: what makes a claim honoured, and a dead writer's claims free.

An instance is alive while it beats (`writer_instances.seen_at`) and while its presence
lock is held (migration 012): a session-level advisory lock on a connection of the pool it
keeps for itself, which PostgreSQL drops the moment the process dies, however it died.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# Rows of instances gone this long are forgotten (their claims were free long before).
FORGET_AFTER_SECONDS = 86_400.0


class InstanceRegistry:
    def __init__(self, pool: asyncpg.Pool, instance: str) -> None:
        self._pool = pool
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
            await conn.execute(
                """
                INSERT INTO writer_instances (instance, holds_presence) VALUES ($1, true)
                ON CONFLICT (instance) DO UPDATE SET seen_at = now(), holds_presence = true
                """,
                self.instance,
            )
            await conn.execute(
                "DELETE FROM writer_instances WHERE seen_at < now() - make_interval(secs => $1)",
                FORGET_AFTER_SECONDS,
            )

    async def leave(self) -> None:
        """A clean stop: this instance's claims are free at once."""
        try:
            await self._pool.execute(
                "DELETE FROM writer_instances WHERE instance = $1", self.instance
            )
        finally:
            await self._drop_presence()
