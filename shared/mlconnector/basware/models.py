"""Basware P2P, push-notification and SmartPDF payloads as pydantic models.

Attribute names are snake_case; the JSON names (aliases) are exactly those of Basware's
OpenAPI files, and the length limits are theirs too, so a record that Basware would refuse
for its shape fails here, naming the field, before any HTTP call. Unknown fields in answers
are ignored (Basware adds fields over time).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from pydantic.alias_generators import to_camel


def _text(max_length: int, min_length: int = 0) -> Any:
    return StringConstraints(min_length=min_length, max_length=max_length)


Code36 = Annotated[str, _text(36, 1)]
Code25 = Annotated[str, _text(25, 1)]
Text25 = Annotated[str, _text(25)]
Text36 = Annotated[str, _text(36)]
Text50 = Annotated[str, _text(50)]
Text100 = Annotated[str, _text(100)]
Text200 = Annotated[str, _text(200)]
Text250 = Annotated[str, _text(250)]
Text1000 = Annotated[str, _text(1000)]
Currency = Annotated[str, _text(3, 2)]
Country = Annotated[str, _text(2, 2)]


class BaswareModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="ignore"
    )
    # Fields Basware sets itself; left out of what the client sends.
    server_fields: ClassVar[frozenset[str]] = frozenset()

    def payload(self) -> dict[str, Any]:
        """The JSON object the client sends: Basware's names, no nulls, no server-set fields."""
        return self.model_dump(mode="json", exclude_none=True, exclude=set(self.server_fields))


# --- vendors (VendorEntity) ---


class VendorCompany(BaswareModel):
    company_code: Annotated[str, _text(32, 1)]
    inherit_to_child_units: bool | None = None


class VendorIdentifier(BaswareModel):
    id: Code36
    scheme_id: Annotated[str, _text(32, 1)]
    default_party_id: bool | None = None


class AddressType(StrEnum):
    ADDITIONAL = "AdditionalAddress"
    VISITING = "VisitingAddress"
    REMITTANCE = "RemittanceAddress"
    DELIVERY = "DeliveryAddress"
    POSTAL = "PostalAddress"
    REGISTRATION = "RegistrationAddress"


class VendorAddress(BaswareModel):
    external_code: Code36
    name: Annotated[str, _text(200, 1)]
    description: Text200 | None = None
    address_type: AddressType | None = None
    address_line1: Text200 | None = None
    address_line2: Text200 | None = None
    address_line3: Text200 | None = None
    street_name: Text50 | None = None
    city_name: Text50 | None = None
    postal_zone: Text50 | None = None
    po_box: Text50 | None = None
    country_sub_entity: Text50 | None = None
    country_id: Country | None = None
    default: bool | None = None


class ContactRole(StrEnum):
    PRIMARY = "PrimaryContact"
    SECONDARY = "SecondaryContact"
    ADDITIONAL = "AdditionalContact"


class VendorContact(BaswareModel):
    name: Annotated[str, _text(200, 1)]
    description: Text200 | None = None
    telephone: Text50 | None = None
    telefax: Text50 | None = None
    email: Text200 | None = None
    website: Text200 | None = None
    role: ContactRole | None = None


class FinancialInstitution(BaswareModel):
    id: Annotated[str, _text(20, 1)]
    name: Text250
    scheme_id: Code36
    country_id: Country | None = None


class FinancialAccountIdentifier(BaswareModel):
    scheme_id: Code36
    id: Text50 | None = None
    account_holder_name: Text200 | None = None
    currency_code: Annotated[str, _text(3, 3)] | None = None
    default: bool | None = None


class VendorFinancialAccount(BaswareModel):
    financial_institution: FinancialInstitution | None = None
    financial_account_identifiers: list[FinancialAccountIdentifier] | None = None


class VendorPaymentMeans(BaswareModel):
    payment_means_code: Code25
    description: Text200 | None = None
    currency_code: Annotated[str, _text(3, 3)] | None = None
    financial_accounts: list[VendorFinancialAccount] | None = None
    default: bool | None = None


class VendorPaymentTerms(BaswareModel):
    payment_term_code: Code25
    description: Text200 | None = None


class VendorDeliveryTerm(BaswareModel):
    delivery_term_code: Code25
    delivery_location: Text100 | None = None
    description: Text200 | None = None


class VendorOrderingDetails(BaswareModel):
    ordering_format: (
        Literal["UBL", "EHFXML21", "email", "other", "none", "BaswareNetwork"] | None
    ) = None
    order_email: Annotated[str, _text(320, 3)] | None = None


class VendorProcessingStatus(BaswareModel):
    active: bool | None = None
    payment_denied: bool | None = None


class VendorTag(BaswareModel):
    name: Annotated[str, _text(50, 1)]
    value: Annotated[str, _text(250, 1)]
    tag_group: Text50 | None = None


class VendorCustomField(BaswareModel):
    name: Code25
    value: Annotated[str, _text(250, 1)]
    group_name: Annotated[str, _text(500)] | None = None


class BaswareVendor(BaswareModel):
    server_fields = frozenset({"buvid", "last_updated"})

    external_code: Code36
    vendor_code: Code25
    name: Annotated[str, _text(250, 1)]
    companies: list[VendorCompany]
    vendor_parent: str | None = None
    source_system: Text36 | None = None
    description: Text250 | None = None
    supplier_assigned_account_id: Annotated[str, _text(128)] | None = None
    vendor_class: Text100 | None = None
    identifiers: list[VendorIdentifier] | None = None
    addresses: list[VendorAddress] | None = None
    contacts: list[VendorContact] | None = None
    payment_means: list[VendorPaymentMeans] | None = None
    payment_terms: VendorPaymentTerms | None = None
    delivery_term: VendorDeliveryTerm | None = None
    ordering_details: VendorOrderingDetails | None = None
    processing_status: VendorProcessingStatus | None = None
    tags: list[VendorTag] | None = None
    custom_fields: list[VendorCustomField] | None = None
    buvid: Text36 | None = None
    last_updated: datetime | None = None


# --- matching orders (OrderEntity) and their lines (OrderLineEntity) ---


class MatchingOrder(BaswareModel):
    server_fields = frozenset({"last_updated"})

    external_code: Code36
    order_number: Annotated[str, _text(100, 1)]
    source_system: Code36
    company_code: Code25
    organization_element_code: Annotated[str, _text(25, 2)]
    currency_code: Currency
    supplier_code: Code25
    company_name: Text250 | None = None
    organization_element_name: Text250 | None = None
    order_type_code: Text25 | None = None
    created: AwareDatetime | None = None
    is_closed: bool | None = None
    description: Text1000 | None = None
    purchase_organization_code: Text25 | None = None
    supplier_name: Text250 | None = None
    invoicing_supplier_code: Text25 | None = None
    requested_delivery_date: AwareDatetime | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    payment_term_code: Text25 | None = None
    is_invoiced: bool | None = None
    is_delivered: bool | None = None
    order_reference: Text100 | None = None
    last_updated: datetime | None = None


class VendorList(BaswareModel):
    """An answer of GET /v1/vendors."""

    vendor_entities: list[BaswareVendor]


class MatchingOrderList(BaswareModel):
    """An answer of GET /v1/matchingOrders."""

    matching_orders: list[MatchingOrder]


class OrderLineCoding(BaswareModel):
    external_code: Code36
    row_index: int
    allocated_quantity: float
    net_total: float | None = None
    gross_total: float | None = None
    account_code: Text50 | None = None
    cost_center_code: Text200 | None = None
    project_code: Text25 | None = None
    tax_code: Text25 | None = None
    tax_percent: float | None = None
    # Customer-specific coding dimensions, checked against generic lists
    # (docs/basware-p2p.md §6.6).
    dim_code1: Text100 | None = None
    dim_code2: Text100 | None = None
    dim_code3: Text100 | None = None
    dim_code4: Text100 | None = None
    dim_code5: Text100 | None = None
    dim_code6: Text100 | None = None
    dim_code7: Text100 | None = None
    dim_code8: Text100 | None = None
    dim_code9: Text100 | None = None
    dim_code10: Text100 | None = None


class OrderLineUser(BaswareModel):
    user_external_code: Text36 | None = None
    user_email: Text250 | None = None
    user_role: Literal["Buyer", "Owner", "ReferencePerson", "Other"] | None = None


class GoodsReceipt(BaswareModel):
    external_code: Code36
    goods_receipt_number: Annotated[str, _text(100, 1)]
    quantity: float
    goods_receipt_line_number: Text25 | None = None
    # A reversal is a negative receipt pointing at the receipt it reverses.
    reference_gr_external_code: Text36 | None = Field(default=None, alias="referenceGRExternalCode")
    delivery_note_number: Text250 | None = None
    net_sum: float | None = None
    gross_sum: float | None = None
    net_price: float | None = None
    gross_price: float | None = None
    is_deleted: bool | None = None
    unit_of_measure: Text25 | None = None
    voucher_number: Text100 | None = None
    delivery_date: AwareDatetime | None = None
    comment: Annotated[str, _text(255)] | None = None


class MatchingMode(StrEnum):
    STANDARD = "Standard"
    BLANKET = "Blanket"
    RETURN = "Return"
    SERVICE = "Service"


class MatchingOrderLine(BaswareModel):
    server_fields = frozenset({"last_updated"})

    external_code: Code36
    order_external_code: Code36
    line_number: Annotated[str, _text(100, 1)]
    quantity: float
    matching_mode: MatchingMode
    sort_number: int | None = None
    net_sum: float | None = None
    gross_sum: float | None = None
    currency_code: Currency | None = None
    is_receipt_required: bool | None = None
    is_receipt_based_matching: bool | None = None
    is_overreceival_allowed: bool | None = None
    is_closed: bool | None = None
    is_deleted: bool | None = None
    uom: Text25 | None = None
    net_price: float | None = None
    gross_price: float | None = None
    price_unit: Text25 | None = None
    tax_code: Text25 | None = None
    tax_percent: Annotated[float, Field(ge=0)] | None = None
    tax_sum: float | None = None
    invoiced_quantity: float | None = None
    invoiced_net_sum: float | None = None
    invoiced_gross_sum: float | None = None
    product_code: Text250 | None = None
    product_name: Text250 | None = None
    buyer_product_code: Text250 | None = None
    description: Text1000 | None = None
    requested_delivery_date: AwareDatetime | None = None
    order_line_coding: list[OrderLineCoding] | None = None
    goods_receipts: list[GoodsReceipt] | None = None
    reference_users: list[OrderLineUser] | None = None
    last_updated: datetime | None = None


# --- master data (AccountEntity, CostCenterEntity, ProjectEntityV2, TaxCodeEntity,
# PaymentTermEntity): what coding rows, vendors and orders name; `active: false` in a
# company is Basware's soft delete ---


class Translation(BaswareModel):
    language: Annotated[str, _text(10)]
    translation: Annotated[str, _text(2000)]


class MasterDataCompany(BaswareModel):
    company_code: Annotated[str, _text(32, 1)]
    active: bool


class InheritingCompany(MasterDataCompany):
    inherit: bool = False


class BaswareAccount(BaswareModel):
    server_fields = frozenset({"last_updated"})

    external_code: Code36
    account_code: Code25
    account_names: list[Translation]
    companies: list[InheritingCompany]
    tax_code: Text25 | None = None
    last_updated: datetime | None = None


class BaswareCostCenter(BaswareModel):
    server_fields = frozenset({"last_updated"})

    external_code: Code36
    cost_center_code: Code25
    cost_center_names: list[Translation]
    companies: list[MasterDataCompany]
    last_updated: datetime | None = None


class BaswareProject(BaswareModel):
    """A project of `/v2/projects` (the v1 route is deprecated)."""

    server_fields = frozenset({"last_updated"})

    external_code: Code36
    project_code: Code25
    project_name: Annotated[str, _text(100, 1)]
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    companies: list[MasterDataCompany]
    description: Annotated[str, _text(500)] | None = None
    last_updated: datetime | None = None


class BaswareTaxCode(BaswareModel):
    server_fields = frozenset({"last_updated"})

    external_code: Code36
    tax_code: Code25
    tax_code_names: list[Translation]
    tax_percentage: Annotated[float, Field(ge=-1e9, le=1e9)]
    companies: list[InheritingCompany]
    last_updated: datetime | None = None


class BaswarePaymentTerm(BaswareModel):
    server_fields = frozenset({"last_updated"})

    external_code: Code36
    payment_term_code: Code25
    payment_term_names: list[Translation]
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    companies: list[InheritingCompany]
    # 1: the due date is computed from the term (dueDateDays after the invoice date).
    due_date_calc: Literal[0, 1] | None = None
    due_date_days: Annotated[int, Field(ge=0)] | None = None
    last_updated: datetime | None = None


class GenericListItem(BaswareModel):
    """An item of a generic list (GenericListEntity), posted to `/v1/lists/{listKey}`; the
    list key is the route's, not a field of the item."""

    server_fields = frozenset({"last_updated"})

    # One of the path parameter's enum: the coding lists ACC_LIST_1..35.
    list_key: str = Field(exclude=True, pattern=r"^ACC_LIST_([1-9]|[12][0-9]|3[0-5])$")
    external_code: Code36
    companies: list[MasterDataCompany]
    # The code, and its name: the text columns every list has (at least 50 characters).
    text_1: Text50 | None = Field(default=None, alias="text_1")
    text_2: Text50 | None = Field(default=None, alias="text_2")
    last_updated: datetime | None = None


MasterDataRecord = (
    BaswarePaymentTerm
    | BaswareTaxCode
    | BaswareAccount
    | BaswareCostCenter
    | BaswareProject
    | GenericListItem
)


# --- asynchronous outcomes (requestStatus) ---


class AcceptedRequest(BaseModel):
    """A POST Basware answered 200: its request id and the records it carried."""

    request_id: str
    entity_type: str
    external_codes: list[str]


class RequestState(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCESS = "Success"
    ERROR = "Error"
    ACKNOWLEDGED_SUCCESS = "AcknowledgedSuccess"
    ACKNOWLEDGED_ERROR = "AcknowledgedError"


class ItemState(StrEnum):
    IN_PROGRESS = "InProgress"
    NOT_PROCESSED = "NotProcessed"
    WARNING = "Warning"
    SUCCESS = "Success"
    ERROR = "Error"
    RECORD_EXPIRED = "RecordExpired"
    UNPUBLISHED = "Unpublished"


class RequestStatusError(BaswareModel):
    type: str | None = None
    category: str | None = None
    message: str | None = None


class RequestStatusItem(BaswareModel):
    external_code: str | None = None
    parent_external_code: str | None = None
    status: ItemState
    errors: list[RequestStatusError] | None = None


class RequestStatusSystem(BaswareModel):
    system: str | None = None
    module: str | None = None
    system_status: RequestState
    last_updated: datetime | None = None
    items: list[RequestStatusItem] | None = None


class RequestStatus(BaswareModel):
    request_id: str | None = None
    entity_type: str | None = None
    entity_version: str | None = None
    request_status: RequestState
    changed_by: str | None = None
    operation_type: str | None = None
    last_updated: datetime | None = None
    systems: list[RequestStatusSystem] | None = None

    @property
    def is_final(self) -> bool:
        return self.request_status is not RequestState.IN_PROGRESS

    @property
    def items(self) -> list[RequestStatusItem]:
        return [item for system in self.systems or [] for item in system.items or []]


class RequestStatusResponse(BaswareModel):
    request_status: list[RequestStatus]


# --- accounting documents (invoices) ---


class DisputeInfo(BaswareModel):
    is_disputed: bool | None = None
    dispute_reason: str | None = None
    dispute_date: datetime | None = None


class InvoiceLine(BaswareModel):
    external_code: str | None = None
    row_index: int | None = None
    product_code: str | None = None
    product_name: str | None = None
    quantity: float | None = None
    quantity_unit: str | None = None
    order_number: str | None = None
    order_row_number: str | None = None
    net_price: float | None = None
    net_sum: float | None = None
    tax_percent: float | None = None
    tax_sum: float | None = None
    gross_sum: float | None = None


class DimensionCodes(BaseModel):
    """The ten customer-specific coding dimensions of a coding row (`dimCode1..10`,
    docs/basware-p2p.md §6.6)."""

    dim_code1: str | None = None
    dim_code2: str | None = None
    dim_code3: str | None = None
    dim_code4: str | None = None
    dim_code5: str | None = None
    dim_code6: str | None = None
    dim_code7: str | None = None
    dim_code8: str | None = None
    dim_code9: str | None = None
    dim_code10: str | None = None


class CodingRow(BaswareModel, DimensionCodes):
    external_code: str
    row_index: int | None = None
    account_code: str | None = None
    cost_center_code: str | None = None
    project_code: str | None = None
    tax_code: str | None = None
    net_total: float | None = None
    gross_total: float | None = None
    order_number: str | None = None
    order_line_number: str | None = None
    ordered_quantity: float | None = None
    received_quantity: float | None = None
    matched_quantity: float | None = None


class _BookingResponse(BaswareModel):
    """What the ERP answers on transfer and on prebook alike; each adds its own date."""

    external_code: Code36
    success: bool
    response_message: Annotated[str, _text(250, 1)]
    payment_block: bool
    source_system: Annotated[str, _text(32)] | None = None
    voucher_number1: Text25 | None = None
    voucher_number2: Text25 | None = None


class TransferResponse(_BookingResponse):
    transfer_date: AwareDatetime | None = None


class PrebookResponse(_BookingResponse):
    prebook_date: AwareDatetime | None = None


class PaymentResponse(BaswareModel):
    """Each one needs a new externalCode, and fields left out are cleared in Basware."""

    external_code: Code36
    success: bool
    payment_block: bool
    response_message: Text250 | None = None
    source_system: Annotated[str, _text(32)] | None = None
    payment_date: AwareDatetime | None = None
    payment_term_code: Text25 | None = None
    payment_method: Text25 | None = None
    paid_total: float | None = None
    cash_discount: float | None = None
    payment_number: Text250 | None = None
    payment_document: Text250 | None = None


class AccountingDocument(BaswareModel):
    invoice_id: str
    processing_status: str
    company_code: str
    supplier_code: str
    currency_code: str
    payment_block: bool
    bumid: str | None = None
    invoice_number: str | None = None
    invoice_date: datetime | None = None
    due_date: datetime | None = None
    supplier_name: str | None = None
    net_sum: float | None = None
    gross_sum: float | None = None
    tax_sum1: float | None = None
    voucher_number1: str | None = None
    voucher_number2: str | None = None
    removal_reason: str | None = None
    order_numbers: list[str] | None = None
    dispute_info: DisputeInfo | None = None
    invoice_lines: list[InvoiceLine] | None = None
    coding_rows: list[CodingRow] | None = None
    transfer_responses: list[TransferResponse] | None = None
    prebook_responses: list[PrebookResponse] | None = None
    payment_responses: list[PaymentResponse] | None = None
    last_updated: datetime | None = None


class AccountingDocumentResponse(BaswareModel):
    accounting_documents: list[AccountingDocument]


class InvoiceState(StrEnum):
    IN_APPROVAL = "InApprovalProcess"
    READY_FOR_PAYMENT = "ReadyForPayment"
    PAID = "Paid"
    REJECTED = "Rejected"


class InvoiceStatus(BaswareModel):
    """An answer of GET /v1/accountingDocuments/status."""

    invoice_id: str | None = None
    status: InvoiceState
    processing_status: str | None = None
    dispute_info: DisputeInfo | None = None
    last_updated: datetime | None = None


class InvoiceUpload(BaseModel):
    """A PDF handed to SmartPDF; Basware's bumId follows it into the accounting document."""

    bum_id: str


class UploadResponse(BaswareModel):
    # A pre-signed URL is a credential for its object: kept out of reprs and logs.
    upload_url: SecretStr
    bum_id: str


# --- push notifications ---


class Subscription(BaswareModel):
    server_fields = frozenset({"last_updated"})

    task_type: Annotated[str, StringConstraints(min_length=1)]
    subscription_type: Literal["Webhook", "Polling"] = "Webhook"
    notification_webhook_url: Annotated[str, _text(2083, 1)] = Field(alias="notificationWebhookURL")
    webhook_authentication_token: SecretStr
    task_sub_type: str | None = None
    last_updated: datetime | None = None

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        body["webhookAuthenticationToken"] = self.webhook_authentication_token.get_secret_value()
        return body


class SubscriptionsResponse(BaswareModel):
    subscriptions: list[Subscription]


class Notification(BaswareModel):
    """What Basware POSTs to a subscriber: a thin event naming the document to fetch."""

    task_id: str
    task_status: str
    task_type: str
    document_id: str
    task_sub_type: str | None = None
    expiration_time: str | None = None


# --- tokens ---


class TokenResponse(BaseModel):
    access_token: SecretStr
    scope: str = ""
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret


class TokenClaims(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sub: str | None = None
    iss: str
    scope: str = ""
    iat: int | None = None
    exp: int | None = None
    bwcid: str | None = None
