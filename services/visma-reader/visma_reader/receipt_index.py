"""Purchase receipts in the reader's PostgreSQL: what each order's events must carry.

Receipts publish no events of their own: a purchase order's event embeds the receipts whose
lines point at it. This index keeps every receipt as last read, which orders it points at,
and which orders must be published again because one of their receipts changed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence

import asyncpg

from mlconnector.contracts import content_hash
from mlconnector.visma import VismaPurchaseReceipt


def order_numbers(receipt: VismaPurchaseReceipt) -> set[str]:
    """The purchase orders a receipt's lines point at."""
    return {line.po_order_nbr for line in receipt.lines if line.po_order_nbr}


def _stored_json(receipt: VismaPurchaseReceipt) -> str:
    # The list metadata describes the page it came on, not the receipt.
    body = receipt.model_dump(mode="json", by_alias=True)
    body.pop("metadata", None)
    return json.dumps(body, ensure_ascii=False)


class ReceiptIndex:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, tenant: str, receipts: Sequence[VismaPurchaseReceipt]) -> set[str]:
        """Stores receipts that are new or changed, and marks the orders they touch (before and
        after the change) as pending, in one transaction. Returns those orders."""
        if not receipts:
            return set()
        hashes = {r.receipt_nbr: content_hash(r) for r in receipts}
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT receipt_nbr, content_hash FROM visma_purchase_receipt"
                " WHERE tenant = $1 AND receipt_nbr = ANY($2::text[])",
                tenant,
                list(hashes),
            )
            known = {row["receipt_nbr"]: row["content_hash"] for row in rows}
            changed = [r for r in receipts if known.get(r.receipt_nbr) != hashes[r.receipt_nbr]]
            if not changed:
                return set()
            numbers = [r.receipt_nbr for r in changed]
            # A line moved to another order leaves the old order without the receipt: that
            # order changes too.
            previous = await conn.fetch(
                "DELETE FROM visma_purchase_receipt_order"
                " WHERE tenant = $1 AND receipt_nbr = ANY($2::text[]) RETURNING order_nbr",
                tenant,
                numbers,
            )
            links = [(r.receipt_nbr, order) for r in changed for order in order_numbers(r)]
            touched = {row["order_nbr"] for row in previous} | {order for _, order in links}
            await conn.execute(
                """
                INSERT INTO visma_purchase_receipt
                    (tenant, receipt_nbr, content_hash, last_modified, record)
                SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::timestamp[], $5::jsonb[])
                ON CONFLICT (tenant, receipt_nbr) DO UPDATE
                   SET content_hash = EXCLUDED.content_hash,
                       last_modified = EXCLUDED.last_modified,
                       record = EXCLUDED.record
                """,
                tenant,
                numbers,
                [hashes[n] for n in numbers],
                [r.last_modified_date_time.replace(tzinfo=None) for r in changed],
                [_stored_json(r) for r in changed],
            )
            await conn.execute(
                "INSERT INTO visma_purchase_receipt_order (tenant, receipt_nbr, order_nbr)"
                " SELECT $1::text, * FROM unnest($2::text[], $3::text[])",
                tenant,
                [receipt for receipt, _ in links],
                [order for _, order in links],
            )
            await conn.execute(
                "INSERT INTO visma_purchase_order_pending (tenant, order_nbr)"
                " SELECT $1::text, unnest($2::text[]) ON CONFLICT DO NOTHING",
                tenant,
                sorted(touched),
            )
        return touched

    async def receipts_of(
        self, tenant: str, orders: Collection[str]
    ) -> dict[str, tuple[VismaPurchaseReceipt, ...]]:
        """Each order's receipts, in receipt number order (the order's content hash covers
        them, so the order must be the same on every read)."""
        if not orders:
            return {}
        rows = await self._pool.fetch(
            """
            SELECT o.order_nbr, r.record::text AS record
              FROM visma_purchase_receipt_order o
              JOIN visma_purchase_receipt r USING (tenant, receipt_nbr)
             WHERE o.tenant = $1 AND o.order_nbr = ANY($2::text[])
             ORDER BY o.order_nbr, o.receipt_nbr
            """,
            tenant,
            list(orders),
        )
        found: dict[str, list[VismaPurchaseReceipt]] = defaultdict(list)
        for row in rows:
            found[row["order_nbr"]].append(VismaPurchaseReceipt.model_validate_json(row["record"]))
        return {order: tuple(receipts) for order, receipts in found.items()}

    async def pending(self, tenant: str) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT order_nbr FROM visma_purchase_order_pending WHERE tenant = $1"
            " ORDER BY order_nbr",
            tenant,
        )
        return [row["order_nbr"] for row in rows]

    async def settle(self, tenant: str, orders: Collection[str]) -> None:
        """Called once the orders' events (with their current receipts) are acknowledged."""
        if orders:
            await self._pool.execute(
                "DELETE FROM visma_purchase_order_pending"
                " WHERE tenant = $1 AND order_nbr = ANY($2::text[])",
                tenant,
                list(orders),
            )
