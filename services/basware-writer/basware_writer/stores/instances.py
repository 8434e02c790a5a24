"""Liveness of writer instances: what makes a claim honoured, and a dead writer's claims free."""

from __future__ import annotations

import asyncpg

# Rows of instances gone this long are forgotten (their claims were free long before).
FORGET_AFTER_SECONDS = 86_400.0


class InstanceRegistry:
    def __init__(self, pool: asyncpg.Pool, instance: str) -> None:
        self._pool = pool
        self.instance = instance

    async def beat(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO writer_instances (instance) VALUES ($1)
                ON CONFLICT (instance) DO UPDATE SET seen_at = now()
                """,
                self.instance,
            )
            await conn.execute(
                "DELETE FROM writer_instances WHERE seen_at < now() - make_interval(secs => $1)",
                FORGET_AFTER_SECONDS,
            )

    async def leave(self) -> None:
        """A clean stop: this instance's claims are free at once."""
        await self._pool.execute("DELETE FROM writer_instances WHERE instance = $1", self.instance)
