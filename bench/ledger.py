"""The Visma ledger as the scenarios shape it: records put at rest, records changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.backdoors import (
    VISMA_PURCHASE_ORDER,
    VISMA_PURCHASE_RECEIPT,
    VISMA_SUPPLIER,
    VISMA_SUPPLIER_INVOICE,
)
from bench.pipeline import Pipeline

INVOICE_TYPES = ("Invoice", "CreditAdj")


def supplier_key(n: int) -> str:
    """The seed numbers suppliers 50001, 50002, ..."""
    return str(50_000 + n)


def document_key(n: int) -> str:
    """... and orders, receipts and invoices 000001, 000002, ..."""
    return f"{n:06d}"


async def change_records(pipeline: Pipeline, count: int) -> None:
    """Changes `count` records spread over the three entities, as users would in the ERP."""
    company = pipeline.company.company_id
    for index in range(count):
        number = index // 3 + 2  # record 1 of each entity is the newest of the ledger
        kind = index % 3
        if kind == 0:
            changes = {"note": f"bench change {index}"}
            await pipeline.visma.update(company, VISMA_SUPPLIER, supplier_key(number), changes)
        elif kind == 1:
            changes = {"description": f"bench change {index}"}
            await pipeline.visma.update(
                company, VISMA_PURCHASE_ORDER, document_key(number), changes
            )
        else:
            await _change_invoice(pipeline, document_key(number), index)


async def invoice_key(pipeline: Pipeline, reference: str) -> str:
    # About one seeded invoice in twenty is a credit adjustment: its key names that type.
    for document_type in INVOICE_TYPES:
        key = f"{document_type}/{reference}"
        if await pipeline.visma.exists(pipeline.company.company_id, VISMA_SUPPLIER_INVOICE, key):
            return key
    raise LookupError(f"no seeded supplier invoice {reference}")


async def _change_invoice(pipeline: Pipeline, reference: str, index: int) -> None:
    key = await invoice_key(pipeline, reference)
    changes = {"description": f"bench change {index}"}
    await pipeline.visma.update(pipeline.company.company_id, VISMA_SUPPLIER_INVOICE, key, changes)


async def put_ledger_at_rest(pipeline: Pipeline) -> None:
    """Last activity a day ago, everything else older.

    Each stream's newest record sets its cursor, and the reader re-reads a window below the
    cursor (VISMA_READER_OVERLAP_SECONDS): one record a day old and the rest two days old
    leaves one record per stream in that window, as in a ledger nobody touched today.
    """
    company = pipeline.company.company_id
    now = datetime.now(UTC)
    newest = {
        VISMA_SUPPLIER: supplier_key(1),
        VISMA_PURCHASE_ORDER: document_key(1),
        VISMA_PURCHASE_RECEIPT: document_key(1),
        VISMA_SUPPLIER_INVOICE: await invoice_key(pipeline, document_key(1)),
    }
    for entity, key in newest.items():
        await pipeline.visma.touch(company, entity, now - timedelta(days=2))
        await pipeline.visma.touch(company, entity, now - timedelta(days=1), keys=[key])
