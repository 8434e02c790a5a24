"""Early polls handed from the reader a notification reached to the one holding the lease.

The notifications topic is shared by the readers of one consumer group, so a notification
reaches whichever reader owns its partition, not the connection's lease holder. That reader
records the request in PostgreSQL (`visma_early_poll_request`, one row per connection with
the widest entity asked) and sends a NOTIFY on `visma_early_poll` with the connection's name
in the same transaction. Every reader LISTENs on a connection of its own (the pool is
stateless: no LISTEN on a pooled session); the holder takes the row and wakes its poller, so
the early-poll rules (one early cycle per early interval) apply as to its own notifications.
A NOTIFY sent while a reader was not listening is lost, so each lease renewal also takes the
requests of the connections held, and a reader that listens again takes them at once.
README's "Several readers" says why LISTEN/NOTIFY rather than a check on renewal alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

import asyncpg

from mlconnector.connections import ALL_ENTITIES
from mlconnector.contracts import Entity
from mlconnector.retry import Backoff

log = logging.getLogger(__name__)

CHANNEL = "visma_early_poll"
# The later entity in dependency order wins; NULL (every entity) wins over any.
_REQUEST = """
INSERT INTO visma_early_poll_request AS r (connection, entity) VALUES ($1, $2)
ON CONFLICT (connection) DO UPDATE SET
    entity = CASE
        WHEN r.entity IS NULL OR EXCLUDED.entity IS NULL THEN NULL
        WHEN array_position($3::text[], EXCLUDED.entity) > array_position($3::text[], r.entity)
            THEN EXCLUDED.entity
        ELSE r.entity
    END,
    requested_at = now()
"""

# Called with a connection's name for each NOTIFY, and with None once listening (again):
# requests may have been made while nobody listened.
OnRequest = Callable[[str | None], None]


class EarlyPollHandoff:
    def __init__(self, pool: asyncpg.Pool, database_url: str) -> None:
        self._pool = pool
        self._database_url = database_url
        self._backoff = Backoff(base_seconds=1.0, cap_seconds=30.0, max_attempts=None)

    async def request(self, connection: str, entity: Entity | None) -> None:
        """Asks the holder of this connection's lease, whoever it is, for an early poll."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_REQUEST, connection, entity, [e.value for e in ALL_ENTITIES])
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, connection)

    async def take(self, connections: Sequence[str]) -> Mapping[str, Entity | None]:
        """The early polls asked for these connections (connection -> widest entity, None:
        all), removed as they are taken."""
        if not connections:
            return {}
        rows = await self._pool.fetch(
            "DELETE FROM visma_early_poll_request WHERE connection = ANY($1::text[])"
            " RETURNING connection, entity",
            list(connections),
        )
        return {
            r["connection"]: Entity(r["entity"]) if r["entity"] is not None else None for r in rows
        }

    async def listen(self, on_request: OnRequest) -> None:
        """Listens on a connection of its own until cancelled, connecting again when lost."""
        failures = 0
        while True:
            try:
                await self._listen_once(on_request)
                failures = 0
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                failures += 1
                delay = self._backoff.delay(failures)
                log.error("early-poll requests not listened to, again in %.1f s: %s", delay, error)
                await asyncio.sleep(delay)

    async def _listen_once(self, on_request: OnRequest) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(
                CHANNEL, lambda _conn, _pid, _channel, payload: on_request(payload)
            )
            on_request(None)
            await lost.wait()
            log.error("early-poll requests: the listening connection was lost")
        finally:
            await conn.close()
