"""The resources the sandbox serves: their keys, list filters and expansions.

One table row per entity, so the API dispatcher, the store and the back door agree on what a
key is and which query parameters filter (docs/visma-net.md §7, §12 points 4 and 9).
The four the connector reads come first; the reference data after them is read-only in the
API and emits no webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from visma_sandbox.schemas import (
    Branch,
    CreditTerm,
    Currency,
    Dimension,
    Dto,
    GeneralLedgerAccount,
    GeneralLedgerSubaccount,
    PurchaseOrder,
    PurchaseReceipt,
    Supplier,
    SupplierInvoice,
    VatCategory,
)

RecordKey = tuple[str, ...]


class EntityName(StrEnum):
    """The lower-cased list path, which is also how the back door names an entity."""

    SUPPLIER = "supplier"
    PURCHASE_ORDER = "purchaseorder"
    PURCHASE_RECEIPT = "purchasereceipt"
    SUPPLIER_INVOICE = "supplierinvoice"
    ACCOUNT = "account"
    SUBACCOUNT = "subaccount"
    BRANCH = "branch"
    CURRENCY = "currency"
    VAT_CATEGORY = "vatcategory"
    DIMENSION = "dimension"
    CREDIT_TERM = "creditterm"


@dataclass(frozen=True)
class EntitySpec:
    name: EntityName
    schema: type[Dto]
    key_of: Callable[[Dto], RecordKey]
    # Query parameter (lower-cased) -> the value it is compared with, case-insensitively.
    equals: dict[str, Callable[[Dto], str | None]]
    # Query parameter -> a date field of the record (lastModified/created are handled by the store).
    dates: dict[str, Callable[[Dto], datetime | None]] = field(default_factory=dict)
    numbers: dict[str, Callable[[Dto], float]] = field(default_factory=dict)
    flags: dict[str, Callable[[Dto], bool]] = field(default_factory=dict)
    # expand* parameter -> (field omitted unless expanded, expanded by default).
    expansions: dict[str, tuple[str, bool]] = field(default_factory=dict)
    renders_created: bool = False
    # The webhook entity name (docs/visma-net.md §10.1); None: the entity emits no notifications.
    webhook_entity: str | None = None
    # The list route answers a bare array of keys (`/v1/dimension`: "names/IDs").
    lists_keys_only: bool = False
    # The list route answers `{pageNumber, pageSize, totalCount, records}` (credit terms).
    enveloped: bool = False

    def key_text(self, key: RecordKey) -> str:
        return "/".join(reversed(key)) if len(key) == 2 else key[0]

    def parse_key(self, text: str) -> RecordKey:
        if self.name is EntityName.SUPPLIER_INVOICE:
            document_type, _, reference = text.rpartition("/")
            return (reference, document_type or "Invoice")
        return (text,)


def _supplier(record: Dto) -> Supplier:
    assert isinstance(record, Supplier)
    return record


def _order(record: Dto) -> PurchaseOrder:
    assert isinstance(record, PurchaseOrder)
    return record


def _receipt(record: Dto) -> PurchaseReceipt:
    assert isinstance(record, PurchaseReceipt)
    return record


def _invoice(record: Dto) -> SupplierInvoice:
    assert isinstance(record, SupplierInvoice)
    return record


def _account(record: Dto) -> GeneralLedgerAccount:
    assert isinstance(record, GeneralLedgerAccount)
    return record


def _subaccount(record: Dto) -> GeneralLedgerSubaccount:
    assert isinstance(record, GeneralLedgerSubaccount)
    return record


def _branch(record: Dto) -> Branch:
    assert isinstance(record, Branch)
    return record


def _currency(record: Dto) -> Currency:
    assert isinstance(record, Currency)
    return record


def _vat_category(record: Dto) -> VatCategory:
    assert isinstance(record, VatCategory)
    return record


def _credit_term(record: Dto) -> CreditTerm:
    assert isinstance(record, CreditTerm)
    return record


def _dimension(record: Dto) -> Dimension:
    assert isinstance(record, Dimension)
    return record


SPECS: dict[EntityName, EntitySpec] = {
    EntityName.SUPPLIER: EntitySpec(
        name=EntityName.SUPPLIER,
        schema=Supplier,
        key_of=lambda r: (_supplier(r).number,),
        equals={
            "status": lambda r: _supplier(r).status,
            "name": lambda r: _supplier(r).name,
            "vatregistrationid": lambda r: _supplier(r).vat_registration_id,
            "corporateid": lambda r: _supplier(r).corporate_id,
        },
        expansions={"expandnote": ("note", True)},
        webhook_entity="Supplier",
    ),
    EntityName.PURCHASE_ORDER: EntitySpec(
        name=EntityName.PURCHASE_ORDER,
        schema=PurchaseOrder,
        key_of=lambda r: (_order(r).order_nbr,),
        equals={
            "orderstatus": lambda r: _order(r).status,
            "ordertype": lambda r: _order(r).order_type,
            "supplier": lambda r: _order(r).supplier.number,
            "branch": lambda r: b.number if (b := _order(r).branch) else None,
        },
        dates={
            "orderdate": lambda r: _order(r).date,
            "deliverydate": lambda r: _order(r).promised_on,
        },
        webhook_entity="Purchase Order",
    ),
    EntityName.PURCHASE_RECEIPT: EntitySpec(
        name=EntityName.PURCHASE_RECEIPT,
        schema=PurchaseReceipt,
        key_of=lambda r: (_receipt(r).receipt_nbr,),
        equals={
            "receipttype": lambda r: _receipt(r).receipt_type,
            "status": lambda r: _receipt(r).status,
            "supplier": lambda r: _receipt(r).supplier.number,
            "branch": lambda r: b.number if (b := _receipt(r).branch_number) else None,
            "finperiod": lambda r: _receipt(r).post_period,
        },
        dates={
            "receiptdate": lambda r: _receipt(r).date,
            "duedate": lambda r: _receipt(r).due_date,
        },
    ),
    EntityName.SUPPLIER_INVOICE: EntitySpec(
        name=EntityName.SUPPLIER_INVOICE,
        schema=SupplierInvoice,
        # Ordered by reference number; the document type breaks ties (numbers are per type).
        key_of=lambda r: (_invoice(r).reference_number, _invoice(r).document_type),
        equals={
            "supplier": lambda r: _invoice(r).supplier.number,
            "documenttype": lambda r: _invoice(r).document_type,
            "status": lambda r: _invoice(r).status,
            "financialperiod": lambda r: _invoice(r).financial_period,
            "branch": lambda r: b.number if (b := _invoice(r).branch_number) else None,
        },
        dates={"duedate": lambda r: _invoice(r).due_date, "docdate": lambda r: _invoice(r).date},
        numbers={"balance": lambda r: _invoice(r).balance},
        flags={"released": lambda r: _invoice(r).status in ("Open", "Closed", "Reserved")},
        expansions={
            "expandattachment": ("attachments", False),
            "expandnote": ("note", True),
            "expandapproval": ("approval_details", False),
        },
        renders_created=True,
        webhook_entity="AP Invoice",
    ),
    EntityName.ACCOUNT: EntitySpec(
        name=EntityName.ACCOUNT,
        schema=GeneralLedgerAccount,
        key_of=lambda r: (_account(r).account_cd,),
        equals={
            "publiccode": lambda r: _account(r).public_code1,
            "type": lambda r: _account(r).type,
        },
        flags={"active": lambda r: _account(r).active},
        expansions={"includeaccountclassdescription": ("account_class_description", False)},
    ),
    EntityName.SUBACCOUNT: EntitySpec(
        name=EntityName.SUBACCOUNT,
        schema=GeneralLedgerSubaccount,
        key_of=lambda r: (_subaccount(r).subaccount_number,),
        equals={},
        flags={"active": lambda r: _subaccount(r).active},
    ),
    EntityName.BRANCH: EntitySpec(
        name=EntityName.BRANCH,
        schema=Branch,
        key_of=lambda r: (_branch(r).number,),
        equals={},
        expansions={
            "expandaddress": ("main_address", False),
            "expandcontact": ("main_contact", False),
            "expandcurrency": ("currency", False),
            "expandvatzone": ("vat_zone", False),
            "expandledger": ("ledger", False),
        },
    ),
    EntityName.CURRENCY: EntitySpec(
        name=EntityName.CURRENCY,
        schema=Currency,
        key_of=lambda r: (_currency(r).id,),
        equals={},
    ),
    EntityName.VAT_CATEGORY: EntitySpec(
        name=EntityName.VAT_CATEGORY,
        schema=VatCategory,
        key_of=lambda r: (_vat_category(r).vat_category_id,),
        equals={},
        renders_created=True,
    ),
    EntityName.DIMENSION: EntitySpec(
        name=EntityName.DIMENSION,
        schema=Dimension,
        key_of=lambda r: (_dimension(r).id,),
        equals={},
        lists_keys_only=True,
    ),
    EntityName.CREDIT_TERM: EntitySpec(
        name=EntityName.CREDIT_TERM,
        schema=CreditTerm,
        key_of=lambda r: (_credit_term(r).terms_id,),
        equals={"termsid": lambda r: _credit_term(r).terms_id},
        renders_created=True,
        enveloped=True,
    ),
}
