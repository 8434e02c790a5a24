"""Records Basware is still processing, kept in PostgreSQL from the moment its POST is answered.

A row names the requests whose requestStatus decides the record, and the change events the
record answers for, so the outcome is followed to the end after a crash, a restart or a
rebalance, and a re-delivered change is not posted again while its request is open.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from basware_writer.domain import Accepted, PendingRecord, RecordRef, Stage
from basware_writer.stores.accepted import AcceptedStore
from basware_writer.stores.stored_changes import dump_changes, load_changes
from mlconnector.contracts import Entity


def _record(row: asyncpg.Record) -> PendingRecord:
    return PendingRecord(
        changes=load_changes(row["changes"]),
        payload_hash=row["payload_hash"],
        stage=Stage(row["stage"]),
        request_ids=tuple(row["request_ids"]),
        attempts=row["attempts"],
        posted_at=row["posted_at"],
    )


def _keys(records: Sequence[PendingRecord]) -> tuple[list[str], list[str], list[str]]:
    return (
        [r.change.entity.value for r in records],
        [r.change.entity_id for r in records],
        [r.payload_hash for r in records],
    )


class PendingStore:
    def __init__(self, pool: asyncpg.Pool, accepted: AcceptedStore) -> None:
        self._pool = pool
        self._accepted = accepted

    async def record(
        self, tenant: str, records: Sequence[PendingRecord], owner: str
    ) -> list[PendingRecord]:
        """Stores freshly posted records, claimed by `owner`; returns those stored by this
        call (a record already pending with the same payload is followed by its owner)."""
        if not records:
            return []
        entities, ids, hashes = _keys(records)
        rows = await self._pool.fetch(
            """
            INSERT INTO writer_pending (tenant, entity, entity_id, payload_hash,
                supplier_number, stage, request_ids, attempts, changes, claimed_by)
            SELECT $1, r.entity, r.entity_id, r.payload_hash, r.supplier, r.stage,
                   ARRAY(SELECT jsonb_array_elements_text(r.ids::jsonb)), r.attempts,
                   r.changes::jsonb, $10
            FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                        $7::text[], $8::int[], $9::text[])
                 AS r(entity, entity_id, payload_hash, supplier, stage, ids, attempts, changes)
            ON CONFLICT DO NOTHING
            RETURNING entity, entity_id, payload_hash
            """,
            tenant,
            entities,
            ids,
            hashes,
            [r.change.supplier_number for r in records],
            [r.stage.value for r in records],
            [json.dumps(r.request_ids) for r in records],
            [r.attempts for r in records],
            [dump_changes(r.changes) for r in records],
            owner,
        )
        stored = {(Entity(r["entity"]), r["entity_id"], r["payload_hash"]) for r in rows}
        return [r for r in records if (*r.ref, r.payload_hash) in stored]

    async def advance(self, tenant: str, records: Sequence[PendingRecord]) -> None:
        """A record moved on (a header accepted, its lines posted): new stage and requests."""
        if not records:
            return
        entities, ids, hashes = _keys(records)
        await self._pool.execute(
            """
            UPDATE writer_pending p
            SET stage = r.stage, attempts = r.attempts,
                request_ids = ARRAY(SELECT jsonb_array_elements_text(r.ids::jsonb))
            FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
                 AS r(entity, entity_id, payload_hash, stage, ids, attempts)
            WHERE p.tenant = $1 AND p.entity = r.entity AND p.entity_id = r.entity_id
              AND p.payload_hash = r.payload_hash
            """,
            tenant,
            entities,
            ids,
            hashes,
            [r.stage.value for r in records],
            [json.dumps(r.request_ids) for r in records],
            [r.attempts for r in records],
        )

    async def settle(
        self, tenant: str, done: Sequence[PendingRecord], accepted: Sequence[Accepted]
    ) -> None:
        """Records whose outcome is final leave; the accepted ones are remembered, together."""
        if not done and not accepted:
            return
        entities, ids, hashes = _keys(done)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                DELETE FROM writer_pending p
                USING unnest($2::text[], $3::text[], $4::text[]) AS r(entity, entity_id, hash)
                WHERE p.tenant = $1 AND p.entity = r.entity AND p.entity_id = r.entity_id
                  AND p.payload_hash = r.hash
                """,
                tenant,
                entities,
                ids,
                hashes,
            )
            await self._accepted.remember(tenant, accepted, conn)

    async def hand_off(self, tenant: str, records: Sequence[PendingRecord], owner: str) -> None:
        """Stops waiting for these records here: the follow-up (of any instance) takes them."""
        if not records:
            return
        entities, ids, hashes = _keys(records)
        await self._pool.execute(
            """
            UPDATE writer_pending p SET claimed_by = NULL
            FROM unnest($2::text[], $3::text[], $4::text[]) AS r(entity, entity_id, hash)
            WHERE p.tenant = $1 AND p.entity = r.entity AND p.entity_id = r.entity_id
              AND p.payload_hash = r.hash AND p.claimed_by = $5
            """,
            tenant,
            entities,
            ids,
            hashes,
            owner,
        )

    async def claim(
        self, owner: str, timeout_seconds: float, limit: int
    ) -> dict[str, list[PendingRecord]]:
        """Takes records nobody follows (or whose writer died), oldest first, per tenant."""
        rows = await self._pool.fetch(
            """
            UPDATE writer_pending p SET claimed_by = $1
            FROM (
                SELECT tenant, entity, entity_id, payload_hash FROM writer_pending
                WHERE writer_claim_open(claimed_by, $2)
                ORDER BY posted_at LIMIT $3
                FOR UPDATE SKIP LOCKED
            ) c
            WHERE p.tenant = c.tenant AND p.entity = c.entity AND p.entity_id = c.entity_id
              AND p.payload_hash = c.payload_hash
            RETURNING p.*
            """,
            owner,
            timeout_seconds,
            limit,
        )
        claimed: dict[str, list[PendingRecord]] = {}
        for row in sorted(rows, key=lambda r: r["posted_at"]):
            claimed.setdefault(row["tenant"], []).append(_record(row))
        return claimed

    async def in_flight(self, tenant: str, refs: Sequence[RecordRef]) -> set[tuple[RecordRef, str]]:
        """(record, payload hash) of these records that are pending now."""
        if not refs:
            return set()
        rows = await self._pool.fetch(
            """
            SELECT p.entity, p.entity_id, p.payload_hash FROM writer_pending p
            JOIN unnest($2::text[], $3::text[]) AS r(entity, entity_id)
              ON p.entity = r.entity AND p.entity_id = r.entity_id
            WHERE p.tenant = $1
            """,
            tenant,
            [e.value for e, _ in refs],
            [i for _, i in refs],
        )
        return {((Entity(r["entity"]), r["entity_id"]), r["payload_hash"]) for r in rows}

    async def waiting_keys(self, tenant: str, suppliers: Collection[str]) -> set[str]:
        """Suppliers with a record Basware is still processing."""
        if not suppliers:
            return set()
        rows = await self._pool.fetch(
            """
            SELECT DISTINCT supplier_number FROM writer_pending
            WHERE tenant = $1 AND supplier_number = ANY($2::text[])
            """,
            tenant,
            list(suppliers),
        )
        return {r["supplier_number"] for r in rows}

    async def counts(self) -> dict[str, int]:
        rows: list[Any] = await self._pool.fetch(
            "SELECT tenant, count(*) AS n FROM writer_pending GROUP BY tenant"
        )
        return {r["tenant"]: r["n"] for r in rows}
