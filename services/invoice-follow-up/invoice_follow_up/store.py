"""The follow-up's state in PostgreSQL (table invoice_follow): the only module of the service
that speaks SQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from enum import StrEnum

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from invoice_follow_up.policy import (
    FollowedInvoice,
    InvoiceIdentity,
    InvoiceOutcome,
    visma_paid,
)
from mlconnector.basware import AccountingDocument
from mlconnector.visma import VismaSupplierInvoice


class Step(StrEnum):
    TRANSFER = "transfer"
    PAYMENT = "payment"


# One fixed statement per step. A claim older than $4 belonged to an instance that died
# mid-step, so it may be taken over.
_CLAIM = {
    Step.TRANSFER: """
        UPDATE invoice_follow SET transfer_claimed_at = now()
        WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3
          AND transferred_at IS NULL
          AND (transfer_claimed_at IS NULL OR transfer_claimed_at < now() - $4::interval)
        RETURNING true""",
    Step.PAYMENT: """
        UPDATE invoice_follow SET payment_claimed_at = now()
        WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3
          AND payment_posted_at IS NULL
          AND (payment_claimed_at IS NULL OR payment_claimed_at < now() - $4::interval)
        RETURNING true""",
}
_DONE = {
    Step.TRANSFER: """
        UPDATE invoice_follow SET transferred_at = now(), updated_at = now()
        WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3
        RETURNING *""",
    Step.PAYMENT: """
        UPDATE invoice_follow SET payment_posted_at = now(), updated_at = now()
        WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3
        RETURNING *""",
}
_RELEASE = {
    Step.TRANSFER: """
        UPDATE invoice_follow SET transfer_claimed_at = NULL
        WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3""",
    Step.PAYMENT: """
        UPDATE invoice_follow SET payment_claimed_at = NULL
        WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3""",
}


def _followed(row: asyncpg.Record) -> FollowedInvoice:
    return FollowedInvoice(
        tenant=row["tenant"],
        identity=InvoiceIdentity(
            supplier_code=row["supplier_code"], invoice_number=row["invoice_number"]
        ),
        visma_document_type=row["visma_document_type"],
        visma_reference_number=row["visma_reference_number"],
        visma_paid=row["visma_paid"],
        visma_total=row["visma_total"],
        visma_note=row["visma_note"],
        basware_invoice_id=row["basware_invoice_id"],
        company_code=row["company_code"],
        invoice_date=row["invoice_date"],
        processing_status=row["processing_status"],
        outcome=InvoiceOutcome(row["outcome"]) if row["outcome"] else None,
        transferred=row["transferred_at"] is not None,
        payment_posted=row["payment_posted_at"] is not None,
    )


def _one(row: asyncpg.Record | None) -> FollowedInvoice:
    if row is None:
        raise LookupError("invoice_follow row vanished")  # rows are never deleted
    return _followed(row)


class LockedInvoice:
    """One invoice's row under a lock: what it holds now, and its outcome to record."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record], invoice: FollowedInvoice) -> None:
        self._conn = conn
        self.invoice = invoice

    async def record_outcome(self, outcome: InvoiceOutcome) -> FollowedInvoice:
        await self._conn.execute(
            "UPDATE invoice_follow SET outcome = $4, updated_at = now()"
            " WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3",
            *InvoiceStore._key(self.invoice),
            outcome.value,
        )
        return self.invoice.model_copy(update={"outcome": outcome})


class InvoiceStore:
    def __init__(self, pool: asyncpg.Pool, *, claim_timeout: timedelta) -> None:
        self._pool = pool
        # A claim older than this belongs to an instance that died mid-step: take it over.
        self._claim_timeout = claim_timeout

    async def upsert_visma(
        self, tenant: str, identity: InvoiceIdentity, invoice: VismaSupplierInvoice
    ) -> FollowedInvoice:
        row = await self._pool.fetchrow(
            """
            INSERT INTO invoice_follow AS f (tenant, supplier_code, invoice_number,
                visma_document_type, visma_reference_number, visma_paid, visma_total, visma_note)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (tenant, supplier_code, invoice_number) DO UPDATE SET
                visma_document_type = EXCLUDED.visma_document_type,
                visma_reference_number = EXCLUDED.visma_reference_number,
                visma_paid = EXCLUDED.visma_paid,
                visma_total = EXCLUDED.visma_total,
                visma_note = EXCLUDED.visma_note,
                updated_at = now()
            RETURNING *
            """,
            tenant,
            identity.supplier_code,
            identity.invoice_number,
            invoice.document_type,
            invoice.reference_number,
            visma_paid(invoice),
            invoice.amount,
            invoice.note,
        )
        return _one(row)

    async def upsert_basware(
        self, tenant: str, identity: InvoiceIdentity, document: AccountingDocument
    ) -> FollowedInvoice:
        row = await self._pool.fetchrow(
            """
            INSERT INTO invoice_follow AS f (tenant, supplier_code, invoice_number,
                basware_invoice_id, company_code, invoice_date, processing_status)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (tenant, supplier_code, invoice_number) DO UPDATE SET
                basware_invoice_id = EXCLUDED.basware_invoice_id,
                company_code = EXCLUDED.company_code,
                invoice_date = EXCLUDED.invoice_date,
                processing_status = EXCLUDED.processing_status,
                updated_at = now()
            RETURNING *
            """,
            tenant,
            identity.supplier_code,
            identity.invoice_number,
            document.invoice_id,
            document.company_code,
            document.invoice_date,
            document.processing_status,
        )
        return _one(row)

    async def under_way(self, tenant: str) -> list[FollowedInvoice]:
        """Invoices Basware knows that have not reached an end, for the periodic check."""
        rows = await self._pool.fetch(
            "SELECT * FROM invoice_follow"
            " WHERE tenant = $1 AND basware_invoice_id IS NOT NULL"
            " AND payment_posted_at IS NULL AND outcome IS DISTINCT FROM 'rejected'"
            " AND outcome IS DISTINCT FROM 'paid' ORDER BY updated_at",
            tenant,
        )
        return [_followed(row) for row in rows]

    @contextlib.asynccontextmanager
    async def locked(self, invoice: FollowedInvoice) -> AsyncIterator[LockedInvoice]:
        """The invoice's row as it is now, locked (across instances) until the block ends."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM invoice_follow"
                " WHERE tenant = $1 AND supplier_code = $2 AND invoice_number = $3 FOR UPDATE",
                *self._key(invoice),
            )
            yield LockedInvoice(conn, _one(row))

    async def claim(self, invoice: FollowedInvoice, step: Step) -> bool:
        claimed = await self._pool.fetchval(_CLAIM[step], *self._key(invoice), self._claim_timeout)
        return claimed is True

    async def done(self, invoice: FollowedInvoice, step: Step) -> FollowedInvoice:
        return _one(await self._pool.fetchrow(_DONE[step], *self._key(invoice)))

    async def release(self, invoice: FollowedInvoice, step: Step) -> None:
        await self._pool.execute(_RELEASE[step], *self._key(invoice))

    @staticmethod
    def _key(invoice: FollowedInvoice) -> tuple[str, str, str]:
        return (invoice.tenant, invoice.identity.supplier_code, invoice.identity.invoice_number)
