"""Webhook ids already republished, durable in PostgreSQL.

PostgreSQL rather than process memory: several gateway instances may sit behind one load
balancer, and a restart must not forget what was published a minute ago. A claim is one
`INSERT ... ON CONFLICT DO NOTHING`, atomic across instances, so two concurrent deliveries
of one id publish once. An in-memory cache in front would only speed up duplicates,
which are rare, so there is none. Rows older than the TTL are deleted periodically.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg

from webhook_gateway.answers import Source

log = logging.getLogger(__name__)


class SeenStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, source: Source, tenant: str, event_id: str) -> bool:
        """True for the first delivery of this id; False when it was already claimed."""
        claimed = await self._pool.fetchval(
            "INSERT INTO webhook_seen (source, tenant, event_id) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            source.value,
            tenant,
            event_id,
        )
        return claimed is True

    async def release(self, source: Source, tenant: str, event_id: str) -> None:
        """Forgets a claim whose publish failed, so that a redelivery is published."""
        await self._pool.execute(
            "DELETE FROM webhook_seen WHERE source = $1 AND tenant = $2 AND event_id = $3",
            source.value,
            tenant,
            event_id,
        )

    async def forget_older_than(self, age: timedelta) -> int:
        status: str = await self._pool.execute(
            "DELETE FROM webhook_seen WHERE seen_at < now() - $1::interval", age
        )
        return int(status.rsplit(" ", 1)[-1])


async def forget_periodically(store: SeenStore, ttl: timedelta, interval: timedelta) -> None:
    """Runs until cancelled; a failed round is logged and retried at the next interval."""
    while True:
        try:
            forgotten = await store.forget_older_than(ttl)
            if forgotten:
                log.info("forgot %d webhook ids older than %s", forgotten, ttl)
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("webhook id cleanup failed: %s", type(error).__name__)
        await asyncio.sleep(interval.total_seconds())
