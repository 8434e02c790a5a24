"""What is reconciled, entity by entity: a small registry.

Each entry names how the entity is listed in Visma (the reader's models and paging) and in
Basware (its GET list route), how a Visma record becomes what Basware should hold (the
writer's own mapping, mlconnector.mapping), and which of Basware's fields the connector owns:
the only ones compared. A new entity (master data) plugs in with one more entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from mlconnector.basware.client import BaswareClient
from mlconnector.basware.models import AccountingDocument, BaswareVendor, MatchingOrder
from mlconnector.contracts import Entity
from mlconnector.mapping import (
    SOURCE_SYSTEM,
    Unmappable,
    invoice_from_supplier_invoice,
    order_from_purchase_order,
    vendor_from_supplier,
)
from mlconnector.visma.client import VismaClient
from mlconnector.visma.models import (
    VismaPurchaseOrder,
    VismaRecord,
    VismaSupplier,
    VismaSupplierInvoice,
)
from reconciler.compare import Side, owned_values

V = TypeVar("V", bound=VismaRecord)
B = TypeVar("B", bound=BaseModel)

# Visma's largest page (docs/visma-net.md §6.1): a full read costs one call per 1,000 records.
VISMA_PAGE_SIZE = 1000

VENDOR_FIELDS = (
    "externalCode",
    "vendorCode",
    "name",
    "companies",
    "sourceSystem",
    "vendorClass",
    "identifiers",
    "addresses",
    "contacts",
    "paymentMeans",
    "paymentTerms",
    "processingStatus",
)
# The order's header; its lines are listed per order in Basware (one call each), so they
# are left out of the comparison (README: "Reconcile").
ORDER_FIELDS = (
    "externalCode",
    "orderNumber",
    "sourceSystem",
    "companyCode",
    "organizationElementCode",
    "currencyCode",
    "supplierCode",
    "supplierName",
    "orderTypeCode",
    "created",
    "isClosed",
    "description",
    "requestedDeliveryDate",
    "paymentTermCode",
    "orderReference",
)
# What Basware extracts from the uploaded invoice and the connector embedded in it.
INVOICE_FIELDS = (
    "invoiceNumber",
    "invoiceDate",
    "dueDate",
    "supplierCode",
    "currencyCode",
    "netSum",
    "taxSum1",
    "grossSum",
)


@dataclass(frozen=True)
class ReconciledEntity(Generic[V, B]):
    entity: Entity
    visma_model: type[V]
    # Pages of Basware's records of one company.
    list_basware: Callable[[BaswareClient, str], AsyncIterator[list[B]]]
    # What Basware should hold for a Visma record, in the company; raises Unmappable.
    expected: Callable[[V, str], Side]
    held: Callable[[B], Side]
    # Whether a Basware record without a Visma one came from this connector's source system.
    ours: Callable[[B, str], bool] | None
    # Whether `--heal` re-publishes a missing or different record (an invoice upload is
    # not an upsert: a second upload is a second document, so invoices are only reported).
    healable: bool

    def visma_pages(self, visma: VismaClient) -> AsyncIterator[list[V]]:
        return visma.iter_pages(self.visma_model, page_size=VISMA_PAGE_SIZE)

    def visma_side(self, record: V, company_code: str) -> Side:
        try:
            return self.expected(record, company_code)
        except Unmappable as exc:
            return Side(key=record.record_id, entity_id=record.record_id, unmappable=str(exc))


def _dumped(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def _vendor_expected(supplier: VismaSupplier, company_code: str) -> Side:
    vendor = vendor_from_supplier(supplier, company_code).vendor
    return _vendor_side(vendor, entity_id=supplier.record_id)


def _vendor_side(vendor: BaswareVendor, entity_id: str | None = None) -> Side:
    return Side(
        key=vendor.external_code,
        entity_id=entity_id,
        owned=owned_values(_dumped(vendor), VENDOR_FIELDS),
        basware_id=vendor.buvid if entity_id is None else None,
    )


def _order_expected(order: VismaPurchaseOrder, company_code: str) -> Side:
    header = order_from_purchase_order(order, (), company_code).order
    return _order_side(header, entity_id=order.record_id)


def _order_side(order: MatchingOrder, entity_id: str | None = None) -> Side:
    return Side(
        key=order.external_code,
        entity_id=entity_id,
        owned=owned_values(_dumped(order), ORDER_FIELDS),
    )


def _invoice_key(supplier_code: str, invoice_number: str | None) -> str:
    return f"{supplier_code}/{invoice_number or ''}"


def _invoice_expected(invoice: VismaSupplierInvoice, company_code: str) -> Side:
    embedded = invoice_from_supplier_invoice(invoice, company_code).invoice
    return Side(
        key=_invoice_key(embedded.supplier_code, embedded.invoice_number),
        entity_id=invoice.record_id,
        owned=owned_values(_dumped(embedded), INVOICE_FIELDS),
    )


def _invoice_held(document: AccountingDocument) -> Side:
    dumped = _dumped(document)
    # Basware keeps the invoice's dates as instants; the invoice carries days.
    for day in ("invoiceDate", "dueDate"):
        moment = getattr(document, "invoice_date" if day == "invoiceDate" else "due_date")
        dumped[day] = moment.date().isoformat() if moment else None
    return Side(
        key=_invoice_key(document.supplier_code, document.invoice_number),
        owned=owned_values(dumped, INVOICE_FIELDS),
        basware_id=document.invoice_id,
        status=document.processing_status,
    )


async def _vendors(basware: BaswareClient, company_code: str) -> AsyncIterator[list[BaswareVendor]]:
    async for page in basware.iter_vendor_pages(company_code=company_code):
        yield page


async def _orders(basware: BaswareClient, company_code: str) -> AsyncIterator[list[MatchingOrder]]:
    async for page in basware.iter_matching_order_pages(company_code=company_code):
        yield page


# Without a status filter the list leaves out invoices still in approval (New); they are
# asked for on their own (docs/basware-p2p.md §6.4).
DOCUMENT_STATUS_FILTERS: tuple[str | None, ...] = (None, "New")


async def _documents(
    basware: BaswareClient, company_code: str
) -> AsyncIterator[list[AccountingDocument]]:
    for status in DOCUMENT_STATUS_FILTERS:
        async for page in basware.iter_accounting_document_pages(
            processing_status=status, company_code=company_code
        ):
            yield page


def _vendor_ours(vendor: BaswareVendor, company_code: str) -> bool:
    return vendor.source_system == SOURCE_SYSTEM and any(
        c.company_code == company_code for c in vendor.companies
    )


def _order_ours(order: MatchingOrder, company_code: str) -> bool:
    return order.source_system == SOURCE_SYSTEM and order.company_code == company_code


SUPPLIERS = ReconciledEntity[VismaSupplier, BaswareVendor](
    entity=Entity.SUPPLIER,
    visma_model=VismaSupplier,
    list_basware=_vendors,
    expected=_vendor_expected,
    held=_vendor_side,
    ours=_vendor_ours,
    healable=True,
)
PURCHASE_ORDERS = ReconciledEntity[VismaPurchaseOrder, MatchingOrder](
    entity=Entity.PURCHASE_ORDER,
    visma_model=VismaPurchaseOrder,
    list_basware=_orders,
    expected=_order_expected,
    held=_order_side,
    ours=_order_ours,
    healable=True,
)
SUPPLIER_INVOICES = ReconciledEntity[VismaSupplierInvoice, AccountingDocument](
    entity=Entity.SUPPLIER_INVOICE,
    visma_model=VismaSupplierInvoice,
    list_basware=_documents,
    expected=_invoice_expected,
    held=_invoice_held,
    ours=None,
    healable=False,
)

RECONCILED: dict[Entity, ReconciledEntity[Any, Any]] = {
    e.entity: e for e in (SUPPLIERS, PURCHASE_ORDERS, SUPPLIER_INVOICES)
}
