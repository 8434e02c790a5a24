"""Parked changes per key (tenant:supplier), durable in PostgreSQL, released in Kafka order.

A key with parked changes queues every later purchase order and invoice of it. The releaser
claims a key once its vendor is accepted (or its vendor is what waits, for a code) and none
of its requests is pending; appending and
finishing lock the key's row, so a change parked during a release is not left behind.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import asyncpg

from basware_writer.domain import ParkedChange, ParkedKey
from basware_writer.stores.stored_changes import dump_changes, load_changes
from mlconnector.contracts import ChangeEvent, Entity


def hold_of(owner: str) -> str:
    """The claim a batch holds keys with: alive as long as its instance is."""
    return f"{owner}#hold"


_LOCK_KEYS = """
SELECT 1 FROM writer_parked_keys
WHERE tenant = $1 AND supplier_number = ANY($2::text[])
ORDER BY supplier_number FOR UPDATE
"""


class ParkedStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def parked_keys(self, tenant: str, suppliers: Collection[str]) -> set[str]:
        if not suppliers:
            return set()
        rows = await self._pool.fetch(
            """
            SELECT supplier_number FROM writer_parked_keys
            WHERE tenant = $1 AND supplier_number = ANY($2::text[])
            """,
            tenant,
            list(suppliers),
        )
        return {r["supplier_number"] for r in rows}

    async def park(
        self,
        tenant: str,
        parked: Sequence[tuple[ChangeEvent, str]],
        owner: str,
        timeout_seconds: float,
    ) -> set[str]:
        """Appends changes (in Kafka order) with why they wait; a change parked already stays
        where it is. Keys nobody holds are claimed for `owner` (returned), so that nothing is
        released before the "parked" results are out; `unclaim` lets them go."""
        if not parked:
            return set()
        suppliers = sorted({change.supplier_number for change, _ in parked})
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO writer_parked_keys (tenant, supplier_number)
                SELECT $1, s FROM unnest($2::text[]) AS s
                ON CONFLICT DO NOTHING
                """,
                tenant,
                suppliers,
            )
            await conn.execute(_LOCK_KEYS, tenant, suppliers)
            await conn.execute(
                """
                INSERT INTO writer_parked (tenant, supplier_number, change_event_id, change, reason)
                SELECT $1, r.supplier, r.event_id, r.change::jsonb, r.reason
                FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
                     WITH ORDINALITY AS r(supplier, event_id, change, reason, position)
                ORDER BY r.position
                ON CONFLICT DO NOTHING
                """,
                tenant,
                [change.supplier_number for change, _ in parked],
                [change.event_id for change, _ in parked],
                [dump_changes([change]) for change, _ in parked],
                [reason for _, reason in parked],
            )
            held = await conn.fetch(
                """
                UPDATE writer_parked_keys SET claimed_by = $3, claimed_at = now()
                WHERE tenant = $1 AND supplier_number = ANY($2::text[])
                  AND (claimed_by = $3 OR writer_claim_open(claimed_by, $4))
                RETURNING supplier_number
                """,
                tenant,
                suppliers,
                hold_of(owner),
                timeout_seconds,
            )
        return {r["supplier_number"] for r in held}

    async def unclaim(self, owner: str, tenant: str, suppliers: Collection[str]) -> None:
        """Ends `owner`'s hold on these keys (its results are published)."""
        if not suppliers:
            return
        await self._pool.execute(
            """
            UPDATE writer_parked_keys SET claimed_by = NULL
            WHERE tenant = $1 AND supplier_number = ANY($2::text[]) AND claimed_by = $3
            """,
            tenant,
            list(suppliers),
            hold_of(owner),
        )

    async def sweep_holds(self, owner: str, older_than_seconds: float) -> int:
        """Ends holds of `owner` that outlived any batch (their release failed)."""
        swept: str = await self._pool.execute(
            """
            UPDATE writer_parked_keys SET claimed_by = NULL
            WHERE claimed_by = $1 AND claimed_at < now() - make_interval(secs => $2)
            """,
            hold_of(owner),
            older_than_seconds,
        )
        return int(swept.split()[-1])

    async def claim_ready(self, owner: str, timeout_seconds: float, limit: int) -> list[ParkedKey]:
        """Keys whose vendor is accepted, or whose vendor itself waits (for its payment term),
        and with nothing pending, with what waits in them. A key whose codes are still not
        accepted parks again when delivered."""
        async with self._pool.acquire() as conn, conn.transaction():
            keys = await conn.fetch(
                """
                UPDATE writer_parked_keys k SET claimed_by = $1, claimed_at = now()
                FROM (
                    SELECT tenant, supplier_number FROM writer_parked_keys r
                    WHERE writer_claim_open(r.claimed_by, $2)
                      AND (
                          EXISTS (
                              SELECT 1 FROM writer_accepted a
                              WHERE a.tenant = r.tenant AND a.entity = $4
                                AND a.entity_id = r.supplier_number)
                          OR EXISTS (
                              SELECT 1 FROM writer_parked w
                              WHERE w.tenant = r.tenant AND w.supplier_number = r.supplier_number
                                AND w.change -> 0 ->> 'entity' = $4))
                      AND NOT EXISTS (
                          SELECT 1 FROM writer_pending p
                          WHERE p.tenant = r.tenant AND p.supplier_number = r.supplier_number)
                    ORDER BY parked_at LIMIT $3
                    FOR UPDATE SKIP LOCKED
                ) c
                WHERE k.tenant = c.tenant AND k.supplier_number = c.supplier_number
                RETURNING k.tenant, k.supplier_number
                """,
                owner,
                timeout_seconds,
                limit,
                Entity.SUPPLIER.value,
            )
            if not keys:
                return []
            rows = await conn.fetch(
                """
                SELECT p.seq, p.tenant, p.supplier_number, p.change FROM writer_parked p
                JOIN unnest($1::text[], $2::text[]) AS k(tenant, supplier)
                  ON p.tenant = k.tenant AND p.supplier_number = k.supplier
                ORDER BY p.seq
                """,
                [k["tenant"] for k in keys],
                [k["supplier_number"] for k in keys],
            )
        found: dict[tuple[str, str], list[ParkedChange]] = {
            (k["tenant"], k["supplier_number"]): [] for k in keys
        }
        for row in rows:
            (change,) = load_changes(row["change"])
            found[(row["tenant"], row["supplier_number"])].append(
                ParkedChange(seq=row["seq"], change=change)
            )
        return [
            ParkedKey(tenant=tenant, supplier_number=supplier, changes=tuple(changes))
            for (tenant, supplier), changes in found.items()
        ]

    async def finish(
        self, owner: str, tenant: str, suppliers: Collection[str], done: Collection[int]
    ) -> None:
        """Drops the released changes `done`; a key left empty is no longer parked, the others
        are given back to be released later."""
        keys = sorted(suppliers)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK_KEYS, tenant, keys)
            await conn.execute(
                "DELETE FROM writer_parked WHERE seq = ANY($1::bigint[])", list(done)
            )
            await conn.execute(
                """
                DELETE FROM writer_parked_keys k
                WHERE k.tenant = $1 AND k.supplier_number = ANY($2::text[]) AND k.claimed_by = $3
                  AND NOT EXISTS (
                      SELECT 1 FROM writer_parked p
                      WHERE p.tenant = k.tenant AND p.supplier_number = k.supplier_number)
                """,
                tenant,
                keys,
                owner,
            )
            await conn.execute(
                """
                UPDATE writer_parked_keys SET claimed_by = NULL
                WHERE tenant = $1 AND supplier_number = ANY($2::text[]) AND claimed_by = $3
                """,
                tenant,
                keys,
                owner,
            )

    async def counts(self) -> tuple[dict[str, int], int]:
        """Parked changes per tenant, and parked keys in all."""
        rows = await self._pool.fetch(
            "SELECT tenant, count(*) AS n FROM writer_parked GROUP BY tenant"
        )
        keys: int = await self._pool.fetchval("SELECT count(*) FROM writer_parked_keys")
        return {r["tenant"]: r["n"] for r in rows}, keys
