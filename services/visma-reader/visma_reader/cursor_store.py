"""Durable poll state in PostgreSQL: cursors and the last published hash of each record.

A cursor belongs to a stream (`poller.Stream`): the three entities, and purchase receipts,
which publish nothing of their own but are polled with a cursor of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from mlconnector.contracts import ChangeEvent
from visma_reader.leases import LeaseLost, Tenure
from visma_reader.poller import PollCursor


class CursorStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def cursor(self, tenant: str, stream: str) -> PollCursor:
        row = await self._pool.fetchrow(
            "SELECT high_water, full_scan_at FROM visma_poll_cursor"
            " WHERE tenant = $1 AND entity = $2",
            tenant,
            stream,
        )
        if row is None:
            return PollCursor()
        return PollCursor(high_water=row["high_water"], full_scan_at=row["full_scan_at"])

    async def unpublished(self, events: Sequence[ChangeEvent]) -> list[ChangeEvent]:
        """The events whose record content differs from what was last published."""
        if not events:
            return []
        first = events[0]
        rows = await self._pool.fetch(
            "SELECT record_id, content_hash FROM visma_published_record"
            " WHERE tenant = $1 AND entity = $2 AND record_id = ANY($3::text[])",
            first.tenant,
            first.entity.value,
            [e.entity_id for e in events],
        )
        published = {row["record_id"]: row["content_hash"] for row in rows}
        return [e for e in events if published.get(e.entity_id) != e.content_hash]

    async def remember_published(self, events: Sequence[ChangeEvent]) -> None:
        """Called only after Kafka acknowledged the events."""
        if not events:
            return
        await self._pool.execute(
            """
            INSERT INTO visma_published_record
                (tenant, entity, record_id, content_hash, last_modified)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamp[])
            ON CONFLICT (tenant, entity, record_id) DO UPDATE
               SET content_hash = EXCLUDED.content_hash, last_modified = EXCLUDED.last_modified
            """,
            [e.tenant for e in events],
            [e.entity.value for e in events],
            [e.entity_id for e in events],
            [e.content_hash for e in events],
            [e.last_modified.replace(tzinfo=None) for e in events],
        )

    async def forget(self, tenant: str, entity: str, record_ids: Sequence[str]) -> None:
        """These records' last published content no longer stands (Visma sent a version that
        does not read): whatever reads next is published, even the content published before."""
        await self._pool.execute(
            "DELETE FROM visma_published_record"
            " WHERE tenant = $1 AND entity = $2 AND record_id = ANY($3::text[])",
            tenant,
            entity,
            list(record_ids),
        )

    async def advance(
        self,
        tenant: str,
        stream: str,
        high_water: datetime,
        *,
        full_scan: bool = False,
        tenure: Tenure | None = None,
    ) -> None:
        """Moves the cursor forward (never back) once every event up to it is acknowledged;
        `full_scan` also records that the whole list was read just now. With a `tenure`, the
        same statement writes only while the connection's lease is still held with its epoch
        (leases.py), and LeaseLost says it was not: the lease row is locked while the cursor
        is written, so a takeover waits for the write or makes it refused."""
        status = await self._pool.execute(
            """
            INSERT INTO visma_poll_cursor (tenant, entity, high_water, full_scan_at)
            SELECT $1, $2, $3, CASE WHEN $4 THEN now() END
             WHERE $5::text IS NULL OR EXISTS (
                   SELECT 1 FROM visma_connection_lease
                    WHERE connection = $5 AND holder = $6 AND epoch = $7
                      FOR SHARE)
            ON CONFLICT (tenant, entity) DO UPDATE
               SET high_water = GREATEST(visma_poll_cursor.high_water, EXCLUDED.high_water),
                   full_scan_at = COALESCE(EXCLUDED.full_scan_at, visma_poll_cursor.full_scan_at),
                   updated_at = now()
            """,
            tenant,
            stream,
            high_water.replace(tzinfo=None),
            full_scan,
            tenure.connection if tenure else None,
            tenure.holder if tenure else None,
            tenure.epoch if tenure else None,
        )
        if tenure is not None and status.endswith(" 0"):
            raise LeaseLost(
                f"cursor {tenant}/{stream} not moved: the lease of connection"
                f" {tenure.connection} has a newer holder than epoch {tenure.epoch}"
            )

    def fenced(self, tenure: Tenure) -> FencedCursors:
        return FencedCursors(self, tenure)


class FencedCursors:
    """The cursors as one connection's poller sees them: written under its tenure."""

    def __init__(self, store: CursorStore, tenure: Tenure) -> None:
        self._store = store
        self._tenure = tenure

    async def cursor(self, tenant: str, stream: str) -> PollCursor:
        return await self._store.cursor(tenant, stream)

    async def advance(
        self, tenant: str, stream: str, high_water: datetime, *, full_scan: bool = False
    ) -> None:
        await self._store.advance(
            tenant, stream, high_water, full_scan=full_scan, tenure=self._tenure
        )


async def forget_unlogged(conn: asyncpg.Connection) -> int:
    """After the broker lost its topics: drops the published marks whose change the audit log
    never recorded (it was on the lost broker only), and moves each cursor back to the oldest
    of them, so that the next poll reads those records again and publishes them. Returns how
    many marks were dropped; 0 when the audit log does not exist yet."""
    if await conn.fetchval(
        "SELECT to_regclass('audit_log') IS NULL OR to_regclass('visma_published_record') IS NULL"
    ):
        return 0
    dropped: int = await conn.fetchval(
        """
        WITH lost AS (
            DELETE FROM visma_published_record p
            WHERE NOT EXISTS (
                SELECT 1 FROM audit_log a
                WHERE a.entity_id = p.record_id AND a.entity = p.entity AND a.tenant = p.tenant
                  AND a.payload ->> 'content_hash' = p.content_hash
            )
            RETURNING tenant, entity, last_modified
        ), oldest AS (
            SELECT tenant, entity, min(last_modified) AS last_modified, count(*) AS marks
            FROM lost GROUP BY tenant, entity
        ), moved AS (
            UPDATE visma_poll_cursor c
               SET high_water = LEAST(c.high_water, o.last_modified), updated_at = now()
              FROM oldest o
             WHERE c.tenant = o.tenant AND c.entity = o.entity
        )
        SELECT coalesce(sum(marks), 0) FROM oldest
        """
    )
    return dropped
