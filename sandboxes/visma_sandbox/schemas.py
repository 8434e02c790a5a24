"""The records the sandbox serves, with Visma's field names (docs/visma-net.md §7.1-§7.4).

These are the sandbox's own definitions, written from that page and not shared with the
client (`mlconnector.visma`), so a misread field name shows up as a failing contract test
instead of cancelling out. Server-managed fields (`lastModifiedDateTime`, `createdDateTime`,
`timeStamp`, `errorInfo`, `metadata`) are not part of a record's content: the store keeps them
beside it and adds them when rendering.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Dto(BaseModel):
    # extra="forbid": a seed or back-door write with a misspelt field name fails loudly.
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


SupplierStatus = Literal["Active", "OnHold", "HoldPayments", "Inactive", "OneTime"]
ChargeBearer = Literal["Payer", "Beneficiary", "Shared", "ServiceLevel"]
AccountUsedForPayment = Literal["IBAN", "BBAN", "BANKGIRO", "PLUSGIRO"]
PaymentBy = Literal["DueDate", "DiscountDate"]
OrderStatus = Literal[
    "Balanced", "Cancelled", "Closed", "Hold", "Open", "PendingEmail", "PendingPrint", "Printed",
    "Voided",
]  # fmt: skip
OrderType = Literal["RegularOrder", "DropShip", "Blanket", "StandardBlanket"]
LineType = Literal[
    "GoodsForInventory", "GoodsForSalesOrder", "GoodsForReplenishment", "GoodsForDropShip",
    "NonStockForDropShip", "NonStockForSalesOrder", "NonStock", "Service", "Freight",
    "Description",
]  # fmt: skip
ReceiptType = Literal["PoReceipt", "PoReturn", "TransferReceipt"]
ReceiptStatus = Literal["Hold", "Balanced", "Released"]
DocumentType = Literal[
    "Invoice", "CreditAdj", "DebitAdj", "Prepayment", "Check", "QuickCheck", "Refund",
    "VoidCheck", "VoidQuickCheck",
]  # fmt: skip
InvoiceStatus = Literal[
    "Hold", "Balanced", "Voided", "Scheduled", "Open", "Closed", "Printed", "Prebooked",
    "Reserved",
]  # fmt: skip
ApprovalStatus = Literal[
    "New", "Canceled", "SentToApproval", "ReceivedByApproval", "InProgressApproval",
    "RejectedInApproval", "ApprovedInApproval", "ActiveWorkflowApproval",
]  # fmt: skip
TaxCalculationMode = Literal["TaxSetting", "Gross", "Net"]


class IdDescription(Dto):
    id: str
    description: str | None = None


class IdName(Dto):
    id: str
    name: str | None = None


class NumberName(Dto):
    number: str
    name: str | None = None


class NumberDescription(Dto):
    number: str
    description: str | None = None


class PartyRef(Dto):
    internal_id: int | None = None
    number: str
    name: str | None = None


class Country(Dto):
    id: str
    name: str | None = None


class Address(Dto):
    address_id: int | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    address_line3: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: Country | None = None
    county: IdName | None = None


class Contact(Dto):
    contact_id: int | None = None
    name: str | None = None
    attention: str | None = None
    email: str | None = None
    web: str | None = None
    phone1: str | None = None
    phone2: str | None = None
    fax: str | None = None


class Location(Dto):
    country_id: str | None = None
    id: str
    name: str | None = None


class VatZone(Dto):
    id: str
    description: str | None = None
    default_vat_category: str | None = None
    default_tax_category: str | None = None


class Account(Dto):
    type: str | None = None
    number: str
    description: str | None = None


class GlAccounts(Dto):
    supplier_account: Account | None = None
    supplier_subaccount: Account | None = None
    expense_account: Account | None = None
    expense_account_non_tax: Account | None = None
    expense_eu_account: Account | None = Field(default=None, alias="expenseEUAccount")
    expense_account_import: Account | None = None
    expense_subaccount: Account | None = None


class Attribute(Dto):
    id: str
    value: str | None = None
    description: str | None = None


class PaymentMethodDetail(Dto):
    payment_method_detail_id: str
    payment_method_detail_description: str | None = None
    payment_method_detail_value: str | None = None
    payment_method_detail_banking_detail_type: str | None = None


class Supplier(Dto):
    internal_id: int | None = None
    number: str
    name: str
    status: SupplierStatus = "Active"
    main_address: Address | None = None
    main_contact: Contact | None = None
    account_reference: str | None = None
    parent_record: NumberName | None = None
    supplier_class: IdDescription | None = None
    credit_terms: IdDescription | None = None
    document_language: str | None = None
    currency_id: str | None = None
    remit_address: Address | None = None
    remit_contact: Contact | None = None
    supplier_address: Address | None = None
    supplier_contact: Contact | None = None
    payment_method: IdDescription | None = None
    cash_account: str | None = None
    charge_bearer: ChargeBearer | None = None
    account_used_for_payment: AccountUsedForPayment | None = None
    payment_by: PaymentBy | None = None
    payment_lead_time: int | None = None
    payment_ref_display_mask: str | None = None
    pay_separately: bool | None = None
    location: Location | None = None
    vat_registration_id: str | None = None
    corporate_id: str | None = None
    vat_zone: VatZone | None = None
    gl_accounts: GlAccounts | None = None
    attributes: list[Attribute] = []
    supplier_payment_method_details: list[PaymentMethodDetail] = []
    note: str | None = None


class PurchaseOrderLine(Dto):
    line_nbr: int
    branch: NumberName | None = None
    inventory: NumberDescription | None = None
    line_type: LineType = "GoodsForInventory"
    warehouse: IdDescription | None = None
    line_description: str | None = None
    uom: str | None = None
    order_qty: float = 0.0
    base_order_qty: float | None = None
    qty_on_receipts: float = 0.0
    unit_cost: float = 0.0
    unit_cost_in_base_currency: float | None = None
    ext_cost: float = 0.0
    discount_percent: float = 0.0
    discount_amount: float = 0.0
    amount: float = 0.0
    received_amt: float = 0.0
    tax_category: NumberDescription | None = None
    account: Account | None = None
    sub: Subaccount | None = None
    requested: datetime | None = None
    promised: datetime | None = None
    completed: bool = False
    canceled: bool = False
    note: str | None = None


class PurchaseOrder(Dto):
    order_type: OrderType = "RegularOrder"
    order_nbr: str
    hold: bool = False
    status: OrderStatus = "Open"
    date: datetime | None = None
    promised_on: datetime | None = None
    description: str | None = None
    supplier: PartyRef
    location: IdName | None = None
    owner: str | None = None
    branch: NumberName | None = None
    currency: str | None = None
    supplier_ref: str | None = None
    exchange_rate: float | None = None
    terms: IdDescription | None = None
    line_total: float = 0.0
    tax_total: float = 0.0
    order_total: float = 0.0
    control_total: float = 0.0
    open_quantity: float = 0.0
    open_balance: float = 0.0
    lines: list[PurchaseOrderLine] = []
    note: str | None = None


class PurchaseReceiptLine(Dto):
    line_nbr: int
    branch_number: NumberName | None = None
    inventory: NumberDescription | None = None
    line_type: LineType = "GoodsForInventory"
    warehouse: IdDescription | None = None
    transaction_description: str | None = None
    uom: str | None = None
    order_qty: float = 0.0
    open_qty: float = 0.0
    receipt_qty: float = 0.0
    unit_cost: float = 0.0
    ext_cost: float = 0.0
    amount: float = 0.0
    tax_category: NumberDescription | None = None
    account: Account | None = None
    po_order_type: OrderType | None = None
    po_order_nbr: str | None = None
    po_order_line_nbr: int | None = None
    complete_po_line: bool | None = None


class PurchaseReceipt(Dto):
    receipt_type: ReceiptType = "PoReceipt"
    receipt_nbr: str
    hold: bool = False
    status: ReceiptStatus = "Released"
    date: datetime | None = None
    post_period: str | None = None
    warehouse: IdDescription | None = None
    supplier: PartyRef
    location: IdName | None = None
    currency: str | None = None
    exchange_rate: float | None = None
    supplier_ref: str | None = None
    total_qty: float = 0.0
    control_qty: float = 0.0
    total_amt: float = 0.0
    control_total: float = 0.0
    branch_number: NumberName | None = None
    lines: list[PurchaseReceiptLine] = []
    due_date: datetime | None = None
    note: str | None = None


class AttachmentRef(Dto):
    name: str
    id: str
    revision: int = 1


class Subaccount(Dto):
    """A reference to a subaccount on a line, with the segment values it joins."""

    subaccount_number: str
    subaccount_id: int | None = None
    description: str | None = None
    segments: list[SubaccountSegment] = []


class SupplierInvoiceLine(Dto):
    line_number: int
    inventory_number: str | None = None
    stock_item: bool | None = None
    transaction_description: str | None = None
    quantity: float = 0.0
    uom: str | None = None
    unit_cost: float = 0.0
    unit_cost_in_currency: float | None = None
    cost: float = 0.0
    cost_in_currency: float | None = None
    discount_percent: float = 0.0
    discount_amount: float = 0.0
    account: Account | None = None
    subaccount: Subaccount | None = None
    vat_code: IdDescription | None = None
    po_number: str | None = None
    po_line_nr: int | None = None
    po_receipt_nbr: str | None = None
    po_receipt_line_nbr: int | None = None
    branch_number: NumberName | None = None
    note: str | None = None


class ApprovalDetails(Dto):
    approval_status: ApprovalStatus | None = None
    approver: str | None = None


class SupplierInvoice(Dto):
    document_type: DocumentType = "Invoice"
    reference_number: str
    status: InvoiceStatus = "Open"
    hold: bool = False
    approval_status: ApprovalStatus | None = None
    supplier: PartyRef
    supplier_reference: str | None = None
    buyer_reference: str | None = None
    description: str | None = None
    date: datetime | None = None
    orig_invoice_date: datetime | None = None
    due_date: datetime | None = None
    cash_discount_date: datetime | None = None
    post_period: str | None = None
    financial_period: str | None = None
    currency_id: str | None = None
    exchange_rate: float | None = None
    credit_terms: IdDescription | None = None
    amount: float = 0.0
    vat_amount: float = 0.0
    vat_total: float = 0.0
    vat_taxable_total: float = 0.0
    vat_exempt_total: float = 0.0
    detail_total: float = 0.0
    balance: float = 0.0
    cash_discount: float = 0.0
    payment_ref_no: str | None = None
    payment_method: IdDescription | None = None
    payment_message: str | None = None
    tax_calculation_mode: TaxCalculationMode | None = None
    location: Location | None = None
    branch_number: NumberName | None = None
    note: str | None = None
    invoice_lines: list[SupplierInvoiceLine] = []
    attachments: list[AttachmentRef] = []
    approval_details: ApprovalDetails | None = None


# -- reference data (docs/visma-net.md §7.5) ----------------------------------------------

AccountType = Literal["Asset", "Liability", "Income", "Expense"]


class GeneralLedgerAccount(Dto):
    """`/v1/account`: a chart-of-accounts row (the `Account` above is a reference to one)."""

    account_id: int | None = None
    account_cd: str
    account_group_cd: str | None = None
    account_class: str | None = None
    type: AccountType
    active: bool = True
    description: str | None = None
    account_class_description: str | None = None
    use_default_sub: bool | None = None
    post_option: Literal["Summary", "Detail"] | None = None
    currency: str | None = None
    tax_category: str | None = None
    cash_account: bool | None = None
    public_code1: str | None = None
    control_account_module: str | None = None
    allow_manual_entry: bool | None = None


class SubaccountSegment(Dto):
    segment_id: int
    segment_description: str | None = None
    segment_value: str
    segment_value_description: str | None = None


class GeneralLedgerSubaccount(Dto):
    """`/v1/subaccount`: its number joins the segment values of the SUBACCOUNT dimension."""

    subaccount_number: str
    subaccount_id: int | None = None
    description: str | None = None
    active: bool = True
    segments: list[SubaccountSegment] = []


class Branch(Dto):
    branch_id: int | None = None
    number: str
    name: str
    organization_id: str | None = None
    is_main_branch: bool = False
    is_active: bool = True
    corporate_id: str | None = None
    vat_registration_id: str | None = None
    main_address: Address | None = None
    main_contact: Contact | None = None
    currency: IdDescription | None = None
    vat_zone: VatZone | None = None
    ledger: IdDescription | None = None


class Currency(Dto):
    id: str
    description: str | None = None
    symbol: str | None = None
    is_base_currency: bool = False
    decimal_precision: int = 2
    is_used_for_accounting: bool = True


class VatRateLine(Dto):
    revision_id: str | None = None
    vat_rate: float
    group_type: str | None = None
    start_date: datetime | None = None


class VatCategoryLine(Dto):
    vat_id: str
    vendor_cd: str | None = None
    description: str | None = None
    type: str | None = None
    calculate_on: str | None = None
    vat_rates: list[VatRateLine] = []


class VatCategory(Dto):
    vat_category_id: str
    description: str | None = None
    active: bool = True
    exclude_listed_taxes: bool = False
    vat_category_lines: list[VatCategoryLine] = []


class CreditTerm(Dto):
    """`/v1/creditTerm`: a payment term; the list answers an envelope, not a bare array."""

    terms_id: str
    description: str | None = None
    visible_to: str | None = "All"
    due_date_type: str | None = "FixedNumberOfDays"
    due_day1: int | None = None
    discount_type: str | None = None
    discount_day: int | None = None
    discount_percent: float | None = None


class SegmentValue(Dto):
    """A value of a dimension segment; `lastModified` is added when rendered."""

    internal_id: int | None = None
    segment_id: int
    value_id: str
    description: str | None = None
    public_id: str | None = None
    active: bool = True


class Segment(Dto):
    """A segment of a dimension; `lastModified` and `timeStamp` are added when rendered."""

    internal_id: int | None = None
    segment_id: int
    description: str | None = None
    length: int
    public_id: str | None = None
    segment_values: list[SegmentValue] = []
    is_auto_number: bool = False


class Dimension(Dto):
    """`/v1/dimension/{id}` (the list route answers only the ids)."""

    id: str
    length: int
    description: str | None = None
    segments: list[Segment] = []
