"""Liveness of writer instances: what makes a claim honoured, and a dead writer's claims free."""

from __future__ import annotations

import asyncpg

from mlconnector.instances import InstanceBeats


class InstanceRegistry:
    def __init__(self, pool: asyncpg.Pool, instance: str) -> None:
        self._pool = pool
        self._beats = InstanceBeats("writer_instances", instance)
        self.instance = instance

    async def beat(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._beats.beat(conn)

    async def leave(self) -> None:
        """A clean stop: this instance's claims are free at once."""
        async with self._pool.acquire() as conn:
            await self._beats.leave(conn)
