"""Visma records as Basware payloads: pure functions, validated against Basware's limits.

Every payload is built from pydantic models that carry Basware's field lengths and enums, so a
record Basware would refuse fails here, before any HTTP call, with the failing field named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from mlconnector import value_checks
from mlconnector.basware.invoice_pdf import EmbeddedInvoice
from mlconnector.basware.models import (
    AddressType,
    BaswareVendor,
    ContactRole,
    FinancialAccountIdentifier,
    FinancialInstitution,
    GoodsReceipt,
    InvoiceLine,
    MatchingMode,
    MatchingOrder,
    MatchingOrderLine,
    VendorAddress,
    VendorCompany,
    VendorContact,
    VendorFinancialAccount,
    VendorIdentifier,
    VendorPaymentMeans,
    VendorPaymentTerms,
    VendorProcessingStatus,
)
from mlconnector.contracts import (
    BaswareReason,
    ChangeEvent,
    PurchaseOrderChanged,
    SupplierChanged,
    SupplierInvoiceChanged,
)
from mlconnector.value_checks import signed
from mlconnector.visma.models import (
    Address,
    Contact,
    PaymentMethodDetail,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaSupplier,
    VismaSupplierInvoice,
)

# What Basware shows as the origin of every record the connector sends.
SOURCE_SYSTEM = "VismaNet"
# Visma's purchase receipt type for goods sent back: a negative receipt in Basware.
RETURN_RECEIPT_TYPE = "Return"
CLOSED_ORDER_STATUSES = frozenset({"Closed", "Canceled", "Cancelled", "Completed"})


# --- payloads: what Basware receives for a record ---


class VendorPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    vendor: BaswareVendor


class OrderPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    order: MatchingOrder
    lines: tuple[MatchingOrderLine, ...]


class InvoicePayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice: EmbeddedInvoice
    # The Visma attachment that is the invoice's own PDF; None: the connector renders one.
    attachment_id: str | None = None


Payload = VendorPayload | OrderPayload | InvoicePayload


class Unmappable(ValueError):
    """A record that cannot become a valid Basware payload; `reasons` name the fields."""

    def __init__(self, reasons: Sequence[BaswareReason]) -> None:
        super().__init__("; ".join(r.message for r in reasons))
        self.reasons = tuple(reasons)


def value_problem(field: str, problem: str) -> BaswareReason:
    """A value Basware would take but that makes no sense, naming Basware's field."""
    return BaswareReason(
        category="Preflight", code="value", field=field, message=f"{field} {problem}"
    )


def preflight_reasons(exc: ValidationError) -> tuple[BaswareReason, ...]:
    """Pydantic's complaints as reasons naming Basware's field (its JSON path)."""
    return tuple(
        BaswareReason(
            category="Preflight",
            code=error["type"],
            field=".".join(str(part) for part in error["loc"]),
            message=f"{exc.title}.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}",
        )
        for error in exc.errors()
    )


def payload_hash(payload: Payload) -> str:
    """The normalised content of a send: what Basware would receive, nothing Visma-internal."""
    return hashlib.sha256(payload.model_dump_json(by_alias=True).encode()).hexdigest()


def map_change(change: ChangeEvent, company_code: str) -> Payload:
    """The payload Basware receives for a change; raises Unmappable when it cannot be valid."""
    if isinstance(change, SupplierChanged):
        return vendor_from_supplier(change.record, company_code)
    if isinstance(change, PurchaseOrderChanged):
        return order_from_purchase_order(change.record, change.receipts, company_code)
    if isinstance(change, SupplierInvoiceChanged):
        return invoice_from_supplier_invoice(change.record, company_code)
    raise TypeError(f"no Basware mapping for {type(change).__name__}")


def _aware(moment: datetime | None) -> datetime | None:
    # Visma's date-times are zone-less (read as UTC, see mlconnector.visma.datetimes);
    # Basware's carry a zone.
    return None if moment is None else moment.replace(tzinfo=UTC)


def _address(
    owner: str, suffix: str, name: str, address: Address | None, kind: AddressType
) -> VendorAddress | None:
    if address is None or not (address.address_line1 or address.city or address.postal_code):
        return None
    return VendorAddress(
        external_code=f"{owner}-{suffix}",
        name=name[:200],
        address_type=kind,
        address_line1=address.address_line1,
        address_line2=address.address_line2,
        address_line3=address.address_line3,
        city_name=address.city,
        postal_zone=address.postal_code,
        country_id=address.country.id if address.country else None,
        default=kind is AddressType.POSTAL,
    )


def _contact(contact: Contact | None, role: ContactRole) -> VendorContact | None:
    if contact is None:
        return None
    name = contact.name or contact.attention
    if not name:
        return None
    return VendorContact(
        name=name,
        email=contact.email,
        telephone=contact.phone1,
        telefax=contact.fax,
        website=contact.web,
        role=role,
    )


# Basware's bank account schemes (FinancialAccountIdentifierEntity.schemeId) and the scheme
# of a bank's identifier (FinancialInstitutionEntity.schemeId), docs/basware-api.md §10.10.
IBAN, BBAN, BIC = "IBAN", "BBAN", "BIC"
# Visma's banking detail types that are domestic account numbers: BBAN in Basware.
_DOMESTIC_ACCOUNT_TYPES = frozenset({"BBAN", "BANKGIRO", "PLUSGIRO"})


def bank_scheme(detail: PaymentMethodDetail) -> str:
    """What a Visma bank detail is in Basware: an IBAN, a BBAN (a domestic account number,
    giro numbers included) or a bank's BIC. Visma names it by its banking detail type, else
    only by its description ("IBAN", "BIC/SWIFT", "Account number", ...)."""
    kind = (detail.payment_method_detail_banking_detail_type or "").upper()
    description = (detail.payment_method_detail_description or "").upper()
    if kind == IBAN:
        return IBAN
    if kind in _DOMESTIC_ACCOUNT_TYPES:
        return BBAN
    if kind in (BIC, "SWIFT") or BIC in description or "SWIFT" in description:
        return BIC
    if IBAN in description:
        return IBAN
    return BBAN


def _bank_problem(scheme: str, value: str) -> str | None:
    if scheme == IBAN:
        return value_checks.iban_problem(value)
    if scheme == BIC:
        return value_checks.bic_problem(value)
    return None


def _payment_means(supplier: VismaSupplier) -> list[VendorPaymentMeans] | None:
    """The supplier's bank accounts (IBAN or BBAN) and its bank's BIC as one payment means;
    raises Unmappable naming each value Basware would hold wrongly."""
    details = [
        (bank_scheme(d), value_checks.compact_account(d.payment_method_detail_value))
        for d in supplier.supplier_payment_method_details
        if d.payment_method_detail_value
    ]
    if not details:
        return None
    accounts = [(scheme, value) for scheme, value in details if scheme != BIC]
    bics = [value for scheme, value in details if scheme == BIC]
    where = "paymentMeans.0.financialAccounts.0"
    fields = [
        *(
            (f"{where}.financialAccountIdentifiers.{i}.id", scheme, value)
            for i, (scheme, value) in enumerate(accounts)
        ),
        *((f"{where}.financialInstitution.id", BIC, value) for value in bics[:1]),
    ]
    problems = [
        value_problem(field, f"{scheme} {problem}")
        for field, scheme, value in fields
        if (problem := _bank_problem(scheme, value))
    ]
    if problems:
        raise Unmappable(problems)
    code = supplier.payment_method.id if supplier.payment_method else None
    institution = FinancialInstitution(id=bics[0], name=bics[0], scheme_id=BIC) if bics else None
    identifiers = [
        FinancialAccountIdentifier(
            scheme_id=scheme, id=value, account_holder_name=supplier.name[:200]
        )
        for scheme, value in accounts
    ]
    return [
        VendorPaymentMeans(
            payment_means_code=code or "BANK",
            currency_code=supplier.currency_id,
            financial_accounts=[
                VendorFinancialAccount(
                    financial_institution=institution,
                    financial_account_identifiers=identifiers or None,
                )
            ],
            default=True,
        )
    ]


def vendor_from_supplier(supplier: VismaSupplier, company_code: str) -> VendorPayload:
    """A Visma supplier as a Basware vendor, upserted by its supplier number."""
    try:
        identifiers = [
            VendorIdentifier(id=value, scheme_id=scheme)
            for value, scheme in (
                (supplier.vat_registration_id, "VAT"),
                (supplier.corporate_id, "ORG"),
            )
            if value
        ]
        addresses = [
            a
            for a in (
                _address(
                    supplier.number,
                    "main",
                    supplier.name,
                    supplier.main_address,
                    AddressType.POSTAL,
                ),
                _address(
                    supplier.number,
                    "remit",
                    supplier.name,
                    supplier.remit_address,
                    AddressType.REMITTANCE,
                ),
            )
            if a is not None
        ]
        contacts = [
            c
            for c in (
                _contact(supplier.main_contact, ContactRole.PRIMARY),
                _contact(supplier.remit_contact, ContactRole.SECONDARY),
            )
            if c is not None
        ]
        terms = supplier.credit_terms
        vendor = BaswareVendor(
            external_code=supplier.number,
            vendor_code=supplier.number,
            name=supplier.name,
            companies=[VendorCompany(company_code=company_code)],
            source_system=SOURCE_SYSTEM,
            vendor_class=supplier.supplier_class.id if supplier.supplier_class else None,
            identifiers=identifiers or None,
            addresses=addresses or None,
            contacts=contacts or None,
            payment_means=_payment_means(supplier),
            payment_terms=(
                VendorPaymentTerms(payment_term_code=terms.id, description=terms.description)
                if terms and terms.id
                else None
            ),
            processing_status=VendorProcessingStatus(active=supplier.status != "Inactive"),
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    return VendorPayload(vendor=vendor)


def order_external_code(order: VismaPurchaseOrder) -> str:
    # Order numbers are unique per order type in Visma.
    return f"{order.order_type or 'RO'}-{order.order_nbr}"


def _goods_receipts(
    order: VismaPurchaseOrder, line_nbr: int, receipts: Sequence[VismaPurchaseReceipt]
) -> list[GoodsReceipt]:
    found = []
    for receipt in receipts:
        sign = -1.0 if receipt.receipt_type == RETURN_RECEIPT_TYPE else 1.0
        for line in receipt.lines:
            if line.po_order_nbr != order.order_nbr or line.po_order_line_nbr != line_nbr:
                continue
            found.append(
                GoodsReceipt(
                    external_code=f"{receipt.receipt_nbr}-{line.line_nbr}",
                    goods_receipt_number=receipt.receipt_nbr,
                    goods_receipt_line_number=str(line.line_nbr),
                    quantity=sign * (line.receipt_qty or 0.0),
                    net_sum=None if line.amount is None else sign * line.amount,
                    net_price=line.unit_cost,
                    unit_of_measure=line.uom,
                    delivery_date=_aware(receipt.date),
                )
            )
    return found


def order_from_purchase_order(
    order: VismaPurchaseOrder,
    receipts: Sequence[VismaPurchaseReceipt],
    company_code: str,
) -> OrderPayload:
    """A Visma purchase order as a matching order and its lines, receipts on the lines."""
    external_code = order_external_code(order)
    try:
        header = MatchingOrder(
            external_code=external_code,
            order_number=order.order_nbr,
            source_system=SOURCE_SYSTEM,
            company_code=company_code,
            organization_element_code=company_code,
            currency_code=order.currency,  # None fails, naming it
            supplier_code=order.supplier.number,
            supplier_name=order.supplier.name,
            order_type_code=order.order_type,
            created=_aware(order.date),
            is_closed=order.status in CLOSED_ORDER_STATUSES,
            description=order.description,
            requested_delivery_date=_aware(order.promised_on),
            payment_term_code=order.terms.id if order.terms else None,
            order_reference=order.supplier_ref,
        )
        lines = tuple(
            MatchingOrderLine(
                external_code=f"{external_code}-{line.line_nbr}",
                order_external_code=external_code,
                line_number=str(line.line_nbr),
                sort_number=line.line_nbr,
                quantity=line.order_qty,  # None fails, naming it
                matching_mode=MatchingMode.STANDARD,
                net_price=line.unit_cost,
                net_sum=line.amount,
                currency_code=order.currency,
                uom=line.uom,
                product_code=line.inventory.number if line.inventory else None,
                product_name=line.inventory.description if line.inventory else None,
                description=line.line_description,
                is_receipt_required=True,
                is_closed=bool(line.completed or line.canceled),
                requested_delivery_date=_aware(line.requested),
                goods_receipts=_goods_receipts(order, line.line_nbr, receipts) or None,
            )
            for line in order.lines
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    return OrderPayload(order=header, lines=lines)


def invoice_number(invoice: VismaSupplierInvoice) -> str:
    """The number the supplier printed; Basware's documents are found again by it."""
    return invoice.supplier_reference or invoice.reference_number


def invoice_value_problems(invoice: VismaSupplierInvoice) -> list[BaswareReason]:
    """What makes no sense in an invoice Basware would take as it is: totals whose sign
    contradicts the document type, dates out of range or in the wrong order, each named by
    its EmbeddedInvoice (AccountingDocument) field (docs/basware-api.md §10.10)."""
    problems: list[BaswareReason] = []
    for field, total in (
        ("grossSum", invoice.amount),
        ("netSum", invoice.detail_total),
        ("taxSum1", invoice.vat_total),
    ):
        if problem := value_checks.total_sign_problem(invoice.document_type, total):
            problems.append(value_problem(field, problem))
    days = {
        "invoiceDate": invoice.date.date() if invoice.date else None,
        "dueDate": invoice.due_date.date() if invoice.due_date else None,
    }
    for field, day in days.items():
        if day is not None and (problem := value_checks.year_problem(day)):
            problems.append(value_problem(field, problem))
    issued, due = days["invoiceDate"], days["dueDate"]
    if (
        issued is not None
        and due is not None
        and (problem := value_checks.due_date_problem(issued, due))
    ):
        problems.append(value_problem("dueDate", problem))
    return problems


def invoice_from_supplier_invoice(
    invoice: VismaSupplierInvoice, company_code: str
) -> InvoicePayload:
    """A Visma supplier invoice as the structured invoice embedded in its SmartPDF upload."""
    if invoice.date is None:
        raise Unmappable(
            [
                BaswareReason(
                    category="Preflight",
                    code="missing",
                    field="invoiceDate",
                    message="EmbeddedInvoice.invoiceDate: the Visma invoice has no date",
                )
            ]
        )
    problems = invoice_value_problems(invoice)
    if problems:
        raise Unmappable(problems)
    kind = invoice.document_type
    try:
        embedded = EmbeddedInvoice(
            invoice_number=invoice_number(invoice),
            invoice_date=invoice.date.date(),
            due_date=invoice.due_date.date() if invoice.due_date else None,
            company_code=company_code,
            supplier_code=invoice.supplier.number,
            supplier_name=invoice.supplier.name,
            currency_code=invoice.currency_id,  # None fails, naming it
            net_sum=signed(kind, invoice.detail_total),
            tax_sum1=signed(kind, invoice.vat_total),
            gross_sum=signed(kind, invoice.amount),
            invoice_lines=[
                InvoiceLine(
                    external_code=f"{invoice.reference_number}-{line.line_number}",
                    row_index=line.line_number,
                    product_code=line.inventory_number,
                    product_name=line.transaction_description,
                    quantity=line.quantity,
                    quantity_unit=line.uom,
                    order_number=line.po_number,
                    order_row_number=None if line.po_line_nr is None else str(line.po_line_nr),
                    net_price=line.unit_cost,
                    net_sum=signed(kind, line.cost),
                )
                for line in invoice.invoice_lines
            ],
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    pdfs = [a for a in invoice.attachments if (a.name or "").lower().endswith(".pdf")]
    return InvoicePayload(invoice=embedded, attachment_id=pdfs[0].id if pdfs else None)
