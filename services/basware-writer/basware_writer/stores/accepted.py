"""The last payload Basware accepted per record, in the writer's PostgreSQL tables."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from basware_writer.domain import Accepted, RecordRef
from mlconnector.contracts import Entity

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Executor = asyncpg.Pool | asyncpg.Connection[Any] | PoolConnectionProxy[Any]


class AcceptedStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def lookup(self, tenant: str, refs: Sequence[RecordRef]) -> dict[RecordRef, str]:
        if not refs:
            return {}
        rows = await self._pool.fetch(
            """
            SELECT a.entity, a.entity_id, a.payload_hash
            FROM writer_accepted a
            JOIN unnest($2::text[], $3::text[]) AS r(entity, entity_id)
              ON a.entity = r.entity AND a.entity_id = r.entity_id
            WHERE a.tenant = $1
            """,
            tenant,
            [entity.value for entity, _ in refs],
            [entity_id for _, entity_id in refs],
        )
        return {(Entity(r["entity"]), r["entity_id"]): r["payload_hash"] for r in rows}

    async def inactive(self, tenant: str, refs: Sequence[RecordRef]) -> set[RecordRef]:
        """The codes among these whose last accepted version Basware holds as inactive."""
        if not refs:
            return set()
        rows = await self._pool.fetch(
            """
            SELECT a.entity, a.entity_id
            FROM writer_accepted a
            JOIN unnest($2::text[], $3::text[]) AS r(entity, entity_id)
              ON a.entity = r.entity AND a.entity_id = r.entity_id
            WHERE a.tenant = $1 AND NOT a.active
            """,
            tenant,
            [entity.value for entity, _ in refs],
            [entity_id for _, entity_id in refs],
        )
        return {(Entity(r["entity"]), r["entity_id"]) for r in rows}

    async def vendors(self, tenant: str, suppliers: Collection[str]) -> set[str]:
        """The suppliers whose vendor Basware accepted (in any version)."""
        if not suppliers:
            return set()
        rows = await self._pool.fetch(
            """
            SELECT entity_id FROM writer_accepted
            WHERE tenant = $1 AND entity = $2 AND entity_id = ANY($3::text[])
            """,
            tenant,
            Entity.SUPPLIER.value,
            list(suppliers),
        )
        return {r["entity_id"] for r in rows}

    async def remember(
        self,
        tenant: str,
        accepted: Sequence[Accepted],
        executor: Executor | None = None,
    ) -> None:
        """Stores (record, payload hash, request id, active) for each record Basware accepted."""
        if not accepted:
            return
        await (executor or self._pool).executemany(
            """
            INSERT INTO writer_accepted
                (tenant, entity, entity_id, payload_hash, request_id, active)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (tenant, entity, entity_id) DO UPDATE
            SET payload_hash = EXCLUDED.payload_hash,
                request_id = EXCLUDED.request_id,
                active = EXCLUDED.active,
                accepted_at = now()
            """,
            [(tenant, e.value, i, digest, req, active) for (e, i), digest, req, active in accepted],
        )
