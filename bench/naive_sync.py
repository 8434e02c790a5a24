"""The baseline: the same backfill done the obvious way, one call at a time, no Kafka.

Read every Visma page; for each record, map it (with the writer's own mapping, so the two
send the same payloads), post it to Basware alone and wait for Basware's verdict before
the next one. Receipts are read first so purchase orders carry them, as the pipeline's do.
Invoices: the attachment is fetched from Visma and uploaded through SmartPDF, as the
writer does. This is what the pipeline is compared with; it is not part of the product.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Awaitable, Sequence

from basware_writer.verdicts import verdicts_from_status
from mlconnector.basware.client import BaswareClient
from mlconnector.basware.errors import BaswareError, BaswareRejected
from mlconnector.basware.invoice_pdf import embed_invoice, render_invoice_pdf
from mlconnector.basware.models import AcceptedRequest
from mlconnector.connections import Connection
from mlconnector.contracts import Outcome
from mlconnector.mapping import (
    Unmappable,
    invoice_from_supplier_invoice,
    order_from_purchase_order,
    vendor_from_supplier,
)
from mlconnector.visma.client import VismaClient
from mlconnector.visma.models import (
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaSupplier,
    VismaSupplierInvoice,
)
from visma_reader.receipt_index import order_numbers

STATUS_TIMEOUT = 60.0


async def _verdict(basware: BaswareClient, accepted: Sequence[AcceptedRequest]) -> Outcome:
    """Waits for each request's final status; the record is delivered when all accept it."""
    for request in accepted:
        status = await basware.wait_for_request_status(request.request_id, timeout=STATUS_TIMEOUT)
        verdicts = verdicts_from_status(status, request.external_codes)
        for verdict in verdicts.values():
            if not verdict.accepted:
                return verdict.outcome
    return Outcome.DELIVERED


async def _receipts_by_order(visma: VismaClient) -> dict[str, list[VismaPurchaseReceipt]]:
    by_order: dict[str, list[VismaPurchaseReceipt]] = defaultdict(list)
    async for page in visma.iter_pages(VismaPurchaseReceipt):
        for receipt in page:
            for number in order_numbers(receipt):
                by_order[number].append(receipt)
    return by_order


async def _vendor(basware: BaswareClient, supplier: VismaSupplier, company_code: str) -> Outcome:
    vendor = vendor_from_supplier(supplier, company_code).vendor
    return await _verdict(basware, await basware.upsert_vendors([vendor]))


async def _order(
    basware: BaswareClient,
    order: VismaPurchaseOrder,
    receipts: Sequence[VismaPurchaseReceipt],
    company_code: str,
) -> Outcome:
    payload = order_from_purchase_order(order, receipts, company_code)
    outcome = await _verdict(basware, await basware.upsert_matching_orders([payload.order]))
    if outcome is Outcome.DELIVERED and payload.lines:
        outcome = await _verdict(basware, await basware.upsert_matching_order_lines(payload.lines))
    return outcome


async def _invoice(
    visma: VismaClient,
    basware: BaswareClient,
    invoice: VismaSupplierInvoice,
    connection: Connection,
) -> Outcome:
    payload = invoice_from_supplier_invoice(invoice, connection.basware_company_code or "")
    if payload.attachment_id is None:
        pdf = render_invoice_pdf(payload.invoice)
    else:
        pdf = embed_invoice(await visma.get_attachment(payload.attachment_id), payload.invoice)
    inbox = connection.basware_receiving_email or ""
    # SmartPDF has no requestStatus: the stored upload is Basware's acceptance (as for the
    # writer).
    await basware.upload_invoice(pdf, receiving_email=inbox, notification_email=inbox)
    return Outcome.DELIVERED


async def _outcome(send: Awaitable[Outcome]) -> Outcome:
    try:
        return await send
    except (Unmappable, BaswareRejected):
        return Outcome.REJECTED
    except BaswareError:
        return Outcome.FAILED


async def naive_sync(connection: Connection) -> Counter[Outcome]:
    """Syncs every supplier, purchase order and invoice; returns the outcomes."""
    company_code = connection.basware_company_code or ""
    outcomes: Counter[Outcome] = Counter()
    async with connection.visma_client() as visma, connection.basware_client() as basware:
        async for suppliers in visma.iter_pages(VismaSupplier):
            for supplier in suppliers:
                outcomes[await _outcome(_vendor(basware, supplier, company_code))] += 1
        receipts = await _receipts_by_order(visma)
        async for orders in visma.iter_pages(VismaPurchaseOrder):
            for order in orders:
                mine = receipts.get(order.order_nbr, [])
                outcomes[await _outcome(_order(basware, order, mine, company_code))] += 1
        async for invoices in visma.iter_pages(VismaSupplierInvoice):
            for invoice in invoices:
                outcomes[await _outcome(_invoice(visma, basware, invoice, connection))] += 1
    return outcomes
