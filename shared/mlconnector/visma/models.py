"""Visma.net ERP records as the service API returns them.

Attributes are snake_case with the API's camelCase names as aliases. Unknown fields are kept
(`extra="allow"`) so that a record is carried downstream exactly as read, and a field Visma
adds tomorrow breaks nothing today. Field names follow docs/visma-net.md §7.1-§7.4; the traps
it lists are kept as Visma spells them (`creditTerms`, `orderNbr`, `currency` on POs but
`currencyId` on invoices, line `cost`, the PO-link fields on invoice lines).

Every date-time accepts the mixed shapes Visma sends and is normalised to naive UTC
(`datetimes.py`), so `last_modified_date_time` values compare with each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mlconnector.visma.datetimes import VismaDateTime


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _supplier_of(row: Mapping[str, Any]) -> str | None:
    supplier = row.get("supplier")
    return _text(supplier.get("number")) if isinstance(supplier, dict) else None


class VismaModel(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        frozen=True,
    )


class SupplierRef(VismaModel):
    internal_id: int | None = None
    number: str
    name: str | None = None


class IdDescription(VismaModel):
    id: str | None = None
    description: str | None = None


class IdName(VismaModel):
    id: str | None = None
    name: str | None = None


class NumberName(VismaModel):
    number: str | None = None
    name: str | None = None


class NumberDescription(VismaModel):
    number: str | None = None
    description: str | None = None


class Country(VismaModel):
    id: str | None = None
    name: str | None = None


class Address(VismaModel):
    address_id: int | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    address_line3: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: Country | None = None
    county: IdName | None = None


class Contact(VismaModel):
    contact_id: int | None = None
    name: str | None = None
    attention: str | None = None
    email: str | None = None
    web: str | None = None
    phone1: str | None = None
    phone2: str | None = None
    fax: str | None = None


class Location(VismaModel):
    country_id: str | None = None
    id: str | None = None
    name: str | None = None


class VatZone(VismaModel):
    id: str | None = None
    description: str | None = None
    default_vat_category: str | None = None
    default_tax_category: str | None = None


class GlAccount(VismaModel):
    type: str | None = None
    number: str | None = None
    description: str | None = None


class SupplierGlAccounts(VismaModel):
    supplier_account: GlAccount | None = None
    supplier_subaccount: GlAccount | None = None
    expense_account: GlAccount | None = None
    expense_account_non_tax: GlAccount | None = None
    expense_eu_account: GlAccount | None = Field(default=None, alias="expenseEUAccount")
    expense_account_import: GlAccount | None = None
    expense_subaccount: GlAccount | None = None


class SupplierAttribute(VismaModel):
    id: str | None = None
    value: str | None = None
    description: str | None = None


class PaymentMethodDetail(VismaModel):
    """One bank detail of a supplier (account number, IBAN, BIC, bankgiro ...)."""

    payment_method_detail_id: str | None = None
    payment_method_detail_description: str | None = None
    payment_method_detail_value: str | None = None
    payment_method_detail_banking_detail_type: str | None = None


# The message key (with the tenant) of every reference-data record: one partition, so
# reference data keeps its order, and a key no supplier number can take.
REFERENCE_DATA_KEY = "@reference-data"


class ListShape(StrEnum):
    """How a list route answers (docs/visma-net.md §6.1, §7.5)."""

    ARRAY = "array"  # a bare array, each element with `metadata{totalCount,maxPageSize}`
    ENVELOPE = "envelope"  # `{pageNumber, pageSize, totalCount, records}`
    DIMENSION = "dimension"  # `/v1/dimension/{id}`: one dimension, its segments and values


class VismaRecord(VismaModel):
    """A top-level record the reader polls: it has a list path and a lastModifiedDateTime."""

    resource: ClassVar[str]
    # Query parameters every list call of this resource sends (expansions).
    list_params: ClassVar[dict[str, str]] = {}
    list_shape: ClassVar[ListShape] = ListShape.ARRAY
    # False: the list takes no lastModifiedDateTime filter, so every poll reads it whole.
    filters_by_modified: ClassVar[bool] = True
    last_modified_date_time: VismaDateTime
    # Visma's row version (base64), the same value as the ETag of a single GET.
    time_stamp: str | None = None

    @property
    def record_id(self) -> str:
        raise NotImplementedError

    @property
    def supplier_number(self) -> str:
        raise NotImplementedError

    @classmethod
    def raw_identity(cls, row: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """(record id, supplier number) of a row that does not read as this model, from the
        API's field names, as far as they are text."""
        raise NotImplementedError


class VismaSupplier(VismaRecord):
    resource: ClassVar[str] = "supplier"
    number: str
    name: str
    status: str | None = None
    vat_registration_id: str | None = None
    corporate_id: str | None = None
    currency_id: str | None = None
    internal_id: int | None = None
    main_address: Address | None = None
    main_contact: Contact | None = None
    remit_address: Address | None = None
    remit_contact: Contact | None = None
    supplier_address: Address | None = None
    supplier_contact: Contact | None = None
    parent_record: NumberName | None = None
    supplier_class: IdDescription | None = None
    credit_terms: IdDescription | None = None
    document_language: str | None = None
    payment_method: IdDescription | None = None
    cash_account: str | None = None
    charge_bearer: str | None = None
    account_used_for_payment: str | None = None
    payment_by: str | None = None
    payment_lead_time: int | None = None
    pay_separately: bool | None = None
    location: Location | None = None
    vat_zone: VatZone | None = None
    gl_accounts: SupplierGlAccounts | None = None
    attributes: list[SupplierAttribute] = []
    supplier_payment_method_details: list[PaymentMethodDetail] = []
    note: str | None = None

    @property
    def record_id(self) -> str:
        return self.number

    @property
    def supplier_number(self) -> str:
        return self.number

    @classmethod
    def raw_identity(cls, row: Mapping[str, Any]) -> tuple[str | None, str | None]:
        number = _text(row.get("number"))
        return number, number


class SubaccountSegment(VismaModel):
    segment_id: int
    segment_description: str | None = None
    segment_value: str
    segment_value_description: str | None = None


class Subaccount(VismaModel):
    subaccount_number: str | None = None
    subaccount_id: int | None = None
    description: str | None = None
    # The segment values it joins, each a dimension value of the SUBACCOUNT dimension.
    segments: list[SubaccountSegment] = []


class PurchaseOrderLine(VismaModel):
    line_nbr: int
    branch: NumberName | None = None
    inventory: NumberDescription | None = None
    line_type: str | None = None
    warehouse: IdDescription | None = None
    line_description: str | None = None
    uom: str | None = None
    order_qty: float | None = None
    base_order_qty: float | None = None
    qty_on_receipts: float | None = None
    unit_cost: float | None = None
    ext_cost: float | None = None
    discount_percent: float | None = None
    discount_amount: float | None = None
    amount: float | None = None
    received_amt: float | None = None
    tax_category: NumberDescription | None = None
    account: GlAccount | None = None
    sub: Subaccount | None = None
    requested: VismaDateTime | None = None
    promised: VismaDateTime | None = None
    completed: bool | None = None
    canceled: bool | None = None
    note: str | None = None


class VismaPurchaseOrder(VismaRecord):
    resource: ClassVar[str] = "purchaseorder"
    order_nbr: str
    order_type: str | None = None
    status: str | None = None
    supplier: SupplierRef
    currency: str | None = None
    hold: bool | None = None
    date: VismaDateTime | None = None
    promised_on: VismaDateTime | None = None
    description: str | None = None
    location: IdName | None = None
    owner: str | None = None
    branch: NumberName | None = None
    supplier_ref: str | None = None
    exchange_rate: float | None = None
    terms: IdDescription | None = None
    line_total: float | None = None
    tax_total: float | None = None
    order_total: float | None = None
    control_total: float | None = None
    open_quantity: float | None = None
    open_balance: float | None = None
    lines: list[PurchaseOrderLine] = []
    note: str | None = None

    @property
    def record_id(self) -> str:
        return self.order_nbr

    @property
    def supplier_number(self) -> str:
        return self.supplier.number

    @classmethod
    def raw_identity(cls, row: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return _text(row.get("orderNbr")), _supplier_of(row)


class PurchaseReceiptLine(VismaModel):
    line_nbr: int
    inventory: NumberDescription | None = None
    line_type: str | None = None
    warehouse: IdDescription | None = None
    transaction_description: str | None = None
    uom: str | None = None
    order_qty: float | None = None
    open_qty: float | None = None
    receipt_qty: float | None = None
    unit_cost: float | None = None
    ext_cost: float | None = None
    amount: float | None = None
    po_order_type: str | None = None
    po_order_nbr: str | None = None
    po_order_line_nbr: int | None = None
    complete_po_line: bool | None = None


class VismaPurchaseReceipt(VismaRecord):
    """A goods receipt (three-way matching); its lines point at purchase order lines."""

    resource: ClassVar[str] = "PurchaseReceipt"
    receipt_nbr: str
    receipt_type: str | None = None
    status: str | None = None
    hold: bool | None = None
    date: VismaDateTime | None = None
    post_period: str | None = None
    supplier: SupplierRef
    currency: str | None = None
    supplier_ref: str | None = None
    total_qty: float | None = None
    total_amt: float | None = None
    branch_number: NumberName | None = None
    lines: list[PurchaseReceiptLine] = []
    note: str | None = None

    @property
    def record_id(self) -> str:
        return self.receipt_nbr

    @property
    def supplier_number(self) -> str:
        return self.supplier.number

    @classmethod
    def raw_identity(cls, row: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return _text(row.get("receiptNbr")), _supplier_of(row)


class SupplierInvoiceLine(VismaModel):
    line_number: int
    inventory_number: str | None = None
    stock_item: bool | None = None
    transaction_description: str | None = None
    quantity: float | None = None
    uom: str | None = None
    unit_cost: float | None = None
    cost: float | None = None  # the line amount: invoice lines have no `amount`
    discount_percent: float | None = None
    discount_amount: float | None = None
    account: GlAccount | None = None
    subaccount: Subaccount | None = None
    vat_code: IdDescription | None = None
    po_number: str | None = None
    po_line_nr: int | None = None
    po_receipt_nbr: str | None = None
    po_receipt_line_nbr: int | None = None
    branch_number: NumberName | None = None
    note: str | None = None


class VismaAttachment(VismaModel):
    """An attachment reference; the file itself comes from `VismaClient.get_attachment(id)`."""

    id: str
    name: str | None = None
    revision: int | None = None


class VismaSupplierInvoice(VismaRecord):
    resource: ClassVar[str] = "supplierInvoice"
    list_params: ClassVar[dict[str, str]] = {"expandAttachment": "true", "expandNote": "true"}
    document_type: str
    reference_number: str
    supplier: SupplierRef
    currency_id: str | None = None
    status: str | None = None
    hold: bool | None = None
    approval_status: str | None = None
    supplier_reference: str | None = None
    buyer_reference: str | None = None
    description: str | None = None
    date: VismaDateTime | None = None
    due_date: VismaDateTime | None = None
    post_period: str | None = None
    financial_period: str | None = None
    exchange_rate: float | None = None
    credit_terms: IdDescription | None = None
    amount: float | None = None
    vat_amount: float | None = None
    vat_total: float | None = None
    vat_taxable_total: float | None = None
    detail_total: float | None = None
    balance: float | None = None
    payment_ref_no: str | None = None
    payment_method: IdDescription | None = None
    location: Location | None = None
    branch_number: NumberName | None = None
    note: str | None = None
    created_date_time: VismaDateTime | None = None
    invoice_lines: list[SupplierInvoiceLine] = []
    attachments: list[VismaAttachment] = []

    @property
    def record_id(self) -> str:
        # Reference numbers are unique only per document type.
        return f"{self.document_type}/{self.reference_number}"

    @property
    def supplier_number(self) -> str:
        return self.supplier.number

    @classmethod
    def raw_identity(cls, row: Mapping[str, Any]) -> tuple[str | None, str | None]:
        kind, number = _text(row.get("documentType")), _text(row.get("referenceNumber"))
        return (f"{kind}/{number}" if kind and number else None), _supplier_of(row)


# --- reference data (docs/visma-net.md §7.5) ---


class VismaReferenceRecord(VismaRecord):
    """Reference data: keyed apart from suppliers, on the reference-data key."""

    @property
    def supplier_number(self) -> str:
        return REFERENCE_DATA_KEY


class VismaAccount(VismaReferenceRecord):
    """`/v1/account`: a general ledger account."""

    resource: ClassVar[str] = "account"
    account_id: int | None = None
    account_cd: str
    account_class: str | None = None
    type: str | None = None
    active: bool = True
    description: str | None = None
    tax_category: str | None = None

    @property
    def record_id(self) -> str:
        return self.account_cd


class VatRate(VismaModel):
    vat_rate: float | None = None
    group_type: str | None = None
    start_date: VismaDateTime | None = None


class VatCategoryLine(VismaModel):
    vat_id: str | None = None
    description: str | None = None
    vat_rates: list[VatRate] = []


class VismaVatCategory(VismaReferenceRecord):
    """`/v1/vatCategory`: what lines name as `taxCategory` (orders) and `vatCode` (invoices).
    Its list has no lastModifiedDateTime filter in the reference, so it is read whole."""

    resource: ClassVar[str] = "vatCategory"
    filters_by_modified: ClassVar[bool] = False
    vat_category_id: str
    description: str | None = None
    active: bool = True
    vat_category_lines: list[VatCategoryLine] = []

    @property
    def record_id(self) -> str:
        return self.vat_category_id

    @property
    def rate(self) -> float:
        """The rate of its first VAT line's latest revision; 0 for an exempt category."""
        for line in self.vat_category_lines:
            rates = [r for r in line.vat_rates if r.vat_rate is not None]
            if rates:
                latest = max(rates, key=lambda r: r.start_date or datetime.min)
                return latest.vat_rate or 0.0
        return 0.0


class VismaCreditTerm(VismaReferenceRecord):
    """`/v1/creditTerm`: what suppliers, orders and invoices name as their terms."""

    resource: ClassVar[str] = "creditTerm"
    list_shape: ClassVar[ListShape] = ListShape.ENVELOPE
    terms_id: str
    description: str | None = None
    visible_to: str | None = None
    due_day1: int | None = None

    @property
    def record_id(self) -> str:
        return self.terms_id


class VismaDimensionValue(VismaReferenceRecord):
    """A value of a segment of the SUBACCOUNT dimension (`/v1/dimension/SUBACCOUNT`), with
    its dimension and segment. Values carry `lastModified`; the dimension route has no
    filter, so it is read whole."""

    resource: ClassVar[str] = "dimension/SUBACCOUNT"
    list_shape: ClassVar[ListShape] = ListShape.DIMENSION
    filters_by_modified: ClassVar[bool] = False
    last_modified_date_time: VismaDateTime = Field(alias="lastModified")
    dimension_id: str
    segment_id: int
    segment_description: str | None = None
    value_id: str
    description: str | None = None
    public_id: str | None = None
    active: bool = True

    @property
    def record_id(self) -> str:
        return f"{self.dimension_id}/{self.segment_id}/{self.value_id}"


class ListMetadata(VismaModel):
    """What every element of a list answer carries about the whole result."""

    total_count: int
    max_page_size: int
