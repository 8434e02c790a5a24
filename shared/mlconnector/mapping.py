"""Visma records as Basware payloads: pure functions, validated against Basware's limits.

Every payload is built from pydantic models that carry Basware's field lengths and enums, so a
record Basware would refuse fails here, before any HTTP call, with the failing field named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlconnector import value_checks
from mlconnector.basware.invoice_pdf import EmbeddedInvoice
from mlconnector.basware.models import (
    AddressType,
    BaswareAccount,
    BaswareCostCenter,
    BaswarePaymentTerm,
    BaswareProject,
    BaswareTaxCode,
    BaswareVendor,
    CodingRow,
    ContactRole,
    DimensionCodes,
    FinancialAccountIdentifier,
    FinancialInstitution,
    GenericListItem,
    GoodsReceipt,
    InheritingCompany,
    InvoiceLine,
    MasterDataCompany,
    MasterDataRecord,
    MatchingMode,
    MatchingOrder,
    MatchingOrderLine,
    OrderLineCoding,
    Translation,
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
    AccountChanged,
    BaswareReason,
    ChangeEvent,
    CreditTermChanged,
    DimensionValueChanged,
    Entity,
    PurchaseOrderChanged,
    SupplierChanged,
    SupplierInvoiceChanged,
    VatCategoryChanged,
)
from mlconnector.value_checks import signed
from mlconnector.visma.models import (
    Address,
    Contact,
    GlAccount,
    PaymentMethodDetail,
    Subaccount,
    VismaAccount,
    VismaCreditTerm,
    VismaDimensionValue,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaSupplier,
    VismaSupplierInvoice,
    VismaVatCategory,
)

# What Basware shows as the origin of every record the connector sends.
SOURCE_SYSTEM = "VismaNet"
# Visma's purchase receipt type for goods sent back: a negative receipt in Basware.
RETURN_RECEIPT_TYPE = "Return"
CLOSED_ORDER_STATUSES = frozenset({"Closed", "Canceled", "Cancelled", "Completed"})


# Reference data is valid from the start; Visma gives it no end (docs/basware-p2p.md §6.6).
VALID_FROM = datetime(2000, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2099, 12, 31, tzinfo=UTC)
# Basware asks for an en-US name on every master-data record (docs/basware-p2p.md §6.6).
NAME_LANGUAGE = "en-US"

# A code a record names, as the Visma record that defines it: (entity, id). In Basware the
# master-data records' external codes carry a prefix per kind (TERM-, TAX-, ACC-, CC-, PRJ-),
# so that codes of different kinds ("0" a tax code and a cost center) never share one.
CodeRef = tuple[Entity, str]


# --- the coding layout: where Visma's dimension segments go in Basware ---


class SegmentTarget(StrEnum):
    """What a segment value becomes in Basware (docs/basware-p2p.md §10.10): a cost center, a
    project, or an item of the generic list a coding dimension (dimCode1..10) is checked
    against."""

    COST_CENTER = "cost_center"
    PROJECT = "project"
    DIM_CODE_1 = "dim_code_1"
    DIM_CODE_2 = "dim_code_2"
    DIM_CODE_3 = "dim_code_3"
    DIM_CODE_4 = "dim_code_4"
    DIM_CODE_5 = "dim_code_5"
    DIM_CODE_6 = "dim_code_6"
    DIM_CODE_7 = "dim_code_7"
    DIM_CODE_8 = "dim_code_8"
    DIM_CODE_9 = "dim_code_9"
    DIM_CODE_10 = "dim_code_10"

    @classmethod
    def dim_code(cls, number: int) -> SegmentTarget:
        return cls(f"dim_code_{number}")

    @property
    def dim_code_number(self) -> int | None:
        """n of dimCode n; None for the cost center and the project."""
        prefix, _, number = self.value.rpartition("_")
        return int(number) if prefix == "dim_code" else None

    @property
    def list_key(self) -> str | None:
        """The generic list dimCode n is checked against, ACC_LIST_n; None for the cost
        center and the project (docs/basware-p2p.md §10.10)."""
        number = self.dim_code_number
        return None if number is None else f"ACC_LIST_{number}"

    @property
    def label(self) -> str:
        """As Basware names it: cost center, project, dimCode1."""
        number = self.dim_code_number
        return self.value.replace("_", " ") if number is None else f"dimCode{number}"


class CodingLayout(BaseModel):
    """One connection's layout: which segment of Visma's SUBACCOUNT dimension is Basware's
    cost center and which its project; a segment not named is not sent. The default fits
    the Visma sandbox's company (segment 1 department, segment 2 project)."""

    model_config = ConfigDict(frozen=True)

    dimension_id: str = "SUBACCOUNT"
    segments: dict[int, SegmentTarget] = Field(
        default_factory=lambda: {1: SegmentTarget.COST_CENTER, 2: SegmentTarget.PROJECT}
    )

    @model_validator(mode="after")
    def _one_segment_per_target(self) -> CodingLayout:
        targets = list(self.segments.values())
        doubled = sorted({t.value for t in targets if targets.count(t) > 1})
        if doubled:
            raise ValueError(f"more than one segment maps to {', '.join(doubled)}")
        return self

    @classmethod
    def placing(
        cls, dimension_id: str, segments: Mapping[SegmentTarget, int | None]
    ) -> CodingLayout:
        """The layout that gives each Basware code the segment named (None: not sent)."""
        return cls(
            dimension_id=dimension_id,
            segments={segment: t for t, segment in segments.items() if segment is not None},
        )

    def target(self, segment_id: int) -> SegmentTarget | None:
        return self.segments.get(segment_id)

    def segment_of(self, target: SegmentTarget) -> int | None:
        """The segment that becomes this Basware code; None when none does."""
        return next((s for s, t in self.segments.items() if t is target), None)

    def unknown_segments(self, known: Collection[int]) -> list[int]:
        """Segments the layout names that the Visma dimension does not have."""
        return sorted(s for s in self.segments if s not in known)

    def describe(self) -> str:
        placed = [f"segment {s} -> {t.label}" for s, t in sorted(self.segments.items())]
        return f"{self.dimension_id}: {', '.join(placed) or 'nothing mapped'}"


DEFAULT_LAYOUT = CodingLayout()


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


class MasterDataRoute(StrEnum):
    """Basware's master-data route a reference record is posted to."""

    PAYMENT_TERMS = "paymentTerms"
    TAX_CODES = "taxCodes"
    ACCOUNTS = "accounts"
    COST_CENTERS = "costCenters"
    PROJECTS = "projects"  # /v2/projects
    LISTS = "lists"  # /v1/lists/{listKey}, one list per coding dimension


class MasterDataPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    route: MasterDataRoute
    record: MasterDataRecord

    @property
    def external_code(self) -> str:
        return self.record.external_code


Payload = VendorPayload | OrderPayload | InvoicePayload | MasterDataPayload


class NotSent(ValueError):
    """A record that has no Basware counterpart in this connection's layout (a segment the
    layout does not map): nothing to send, and nothing wrong."""


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


def map_change(
    change: ChangeEvent, company_code: str, layout: CodingLayout = DEFAULT_LAYOUT
) -> Payload:
    """The payload Basware receives for a change; raises Unmappable when it cannot be valid,
    NotSent when the layout gives it no Basware record."""
    if isinstance(change, SupplierChanged):
        return vendor_from_supplier(change.record, company_code)
    if isinstance(change, PurchaseOrderChanged):
        return order_from_purchase_order(change.record, change.receipts, company_code, layout)
    if isinstance(change, SupplierInvoiceChanged):
        return invoice_from_supplier_invoice(change.record, company_code, layout)
    if isinstance(change, CreditTermChanged):
        return payment_term_from_credit_term(change.record, company_code)
    if isinstance(change, VatCategoryChanged):
        return tax_code_from_vat_category(change.record, company_code)
    if isinstance(change, AccountChanged):
        return account_from_gl_account(change.record, company_code)
    if isinstance(change, DimensionValueChanged):
        return dimension_from_segment_value(change.record, company_code, layout)
    raise TypeError(f"no Basware mapping for {type(change).__name__}")


# Records whose payload a coding layout shapes: segment values and coded order lines.
# Uploaded invoices are not among them: an invoice version is uploaded once
# (docs/basware-p2p.md §10.8), and a re-upload would be a second invoice in Basware.
RECODED_ENTITIES = (Entity.DIMENSION_VALUE, Entity.PURCHASE_ORDER)


def _mapped(change: ChangeEvent, company_code: str, layout: CodingLayout) -> str:
    try:
        return payload_hash(map_change(change, company_code, layout))
    except (NotSent, Unmappable) as exc:
        return f"{type(exc).__name__}: {exc}"


def recoded(change: ChangeEvent, company_code: str, old: CodingLayout, new: CodingLayout) -> bool:
    """Whether Basware receives something else for this change under the new layout."""
    if change.entity not in RECODED_ENTITIES:
        return False
    return _mapped(change, company_code, old) != _mapped(change, company_code, new)


def codes_named(change: ChangeEvent, layout: CodingLayout = DEFAULT_LAYOUT) -> set[CodeRef]:
    """The reference records a change's payload names (its terms, accounts, tax codes and
    mapped segment values): Basware must have accepted each before the record is sent."""
    if isinstance(change, SupplierChanged):
        terms = change.record.credit_terms
        return {(Entity.CREDIT_TERM, terms.id)} if terms and terms.id else set()
    if isinstance(change, PurchaseOrderChanged):
        order = change.record
        codes = {(Entity.CREDIT_TERM, order.terms.id)} if order.terms and order.terms.id else set()
        for line in order.lines:
            tax = line.tax_category.number if line.tax_category else None
            codes |= _line_codes(line.account, line.sub, tax, layout)
        return codes
    if isinstance(change, SupplierInvoiceChanged):
        codes = set()
        for invoice_line in change.record.invoice_lines:
            tax = invoice_line.vat_code.id if invoice_line.vat_code else None
            codes |= _line_codes(invoice_line.account, invoice_line.subaccount, tax, layout)
        return codes
    return set()


def code_deactivated(change: ChangeEvent) -> bool:
    """Whether a reference change makes its code inactive in Basware (sent `active: false`):
    an account, VAT category or segment value Visma deactivated."""
    if isinstance(change, AccountChanged | VatCategoryChanged | DimensionValueChanged):
        return not change.record.active
    return False


def _line_codes(
    account: GlAccount | None, sub: Subaccount | None, tax: str | None, layout: CodingLayout
) -> set[CodeRef]:
    codes: set[CodeRef] = set()
    if account and account.number:
        codes.add((Entity.ACCOUNT, account.number))
    if tax:
        codes.add((Entity.VAT_CATEGORY, tax))
    for segment in sub.segments if sub else ():
        if (target := layout.target(segment.segment_id)) is not None:
            codes.add(placed_code(target, segment.segment_value))
    return codes


def placed_code(target: SegmentTarget, value_id: str) -> CodeRef:
    """A segment value as the code it is in Basware ("project 10"), not as Visma keys it: a
    layout change makes the same value another Basware record, which must be accepted anew."""
    return (Entity.DIMENSION_VALUE, f"{target.value}:{value_id}")


def placed_code_of(payload: MasterDataPayload) -> CodeRef | None:
    """The placed code a segment value's payload makes accepted; None for other master data."""
    record = payload.record
    if isinstance(record, BaswareCostCenter):
        return placed_code(SegmentTarget.COST_CENTER, record.cost_center_code)
    if isinstance(record, BaswareProject):
        return placed_code(SegmentTarget.PROJECT, record.project_code)
    if isinstance(record, GenericListItem) and record.text_1 is not None:
        number = int(record.list_key.removeprefix("ACC_LIST_"))
        return placed_code(SegmentTarget.dim_code(number), record.text_1)
    return None


class LineCoding(DimensionCodes):
    """A line's codes in Basware's terms."""

    model_config = ConfigDict(frozen=True)

    account_code: str | None = None
    cost_center_code: str | None = None
    project_code: str | None = None
    tax_code: str | None = None


def line_coding(
    account: GlAccount | None, sub: Subaccount | None, tax: str | None, layout: CodingLayout
) -> LineCoding:
    """Account and tax code as they are; the subaccount's segments placed by the layout."""
    placed: dict[SegmentTarget, str] = {}
    for segment in sub.segments if sub else ():
        target = layout.target(segment.segment_id)
        if target is not None:
            placed[target] = segment.segment_value
    dim_codes = {
        f"dim_code{number}": value
        for target, value in placed.items()
        if (number := target.dim_code_number) is not None
    }
    return LineCoding(
        account_code=account.number if account else None,
        cost_center_code=placed.get(SegmentTarget.COST_CENTER),
        project_code=placed.get(SegmentTarget.PROJECT),
        tax_code=tax,
        **dim_codes,
    )


# --- reference data (docs/basware-p2p.md §6.6) ---


def _names(description: str | None, code: str) -> list[Translation]:
    return [Translation(language=NAME_LANGUAGE, translation=description or code)]


def payment_term_from_credit_term(term: VismaCreditTerm, company_code: str) -> MasterDataPayload:
    """A Visma credit term as a Basware payment term (vendors and orders name it)."""
    try:
        record = BaswarePaymentTerm(
            external_code=f"TERM-{term.terms_id}",
            payment_term_code=term.terms_id,
            payment_term_names=_names(term.description, term.terms_id),
            valid_from=VALID_FROM,
            valid_to=VALID_UNTIL,
            companies=[InheritingCompany(company_code=company_code, active=True)],
            due_date_calc=1 if term.due_day1 is not None else None,
            due_date_days=term.due_day1,
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    return MasterDataPayload(route=MasterDataRoute.PAYMENT_TERMS, record=record)


def tax_code_from_vat_category(category: VismaVatCategory, company_code: str) -> MasterDataPayload:
    """A Visma VAT category as a Basware tax code (lines name it)."""
    try:
        record = BaswareTaxCode(
            external_code=f"TAX-{category.vat_category_id}",
            tax_code=category.vat_category_id,
            tax_code_names=_names(category.description, category.vat_category_id),
            tax_percentage=category.rate,
            companies=[InheritingCompany(company_code=company_code, active=category.active)],
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    return MasterDataPayload(route=MasterDataRoute.TAX_CODES, record=record)


def account_from_gl_account(account: VismaAccount, company_code: str) -> MasterDataPayload:
    """A Visma GL account as a Basware account; deactivated in Visma, inactive in Basware."""
    try:
        record = BaswareAccount(
            external_code=f"ACC-{account.account_cd}",
            account_code=account.account_cd,
            account_names=_names(account.description, account.account_cd),
            companies=[InheritingCompany(company_code=company_code, active=account.active)],
            tax_code=account.tax_category,
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    return MasterDataPayload(route=MasterDataRoute.ACCOUNTS, record=record)


def dimension_from_segment_value(
    value: VismaDimensionValue, company_code: str, layout: CodingLayout
) -> MasterDataPayload:
    """A segment value as the cost center, project or generic-list item the layout makes it."""
    target = layout.target(value.segment_id) if value.dimension_id == layout.dimension_id else None
    if target is None:
        raise NotSent(
            f"segment {value.segment_id} of dimension {value.dimension_id} is not mapped "
            "to Basware in this connection's coding layout"
        )
    company = MasterDataCompany(company_code=company_code, active=value.active)
    name = value.description or value.value_id
    try:
        if (list_key := target.list_key) is not None:
            return MasterDataPayload(
                route=MasterDataRoute.LISTS,
                record=GenericListItem(
                    list_key=list_key,
                    external_code=f"DIM{target.dim_code_number}-{value.value_id}",
                    companies=[company],
                    text_1=value.value_id,
                    text_2=name[:50],
                ),
            )
        if target is SegmentTarget.COST_CENTER:
            return MasterDataPayload(
                route=MasterDataRoute.COST_CENTERS,
                record=BaswareCostCenter(
                    external_code=f"CC-{value.value_id}",
                    cost_center_code=value.value_id,
                    cost_center_names=_names(name, value.value_id),
                    companies=[company],
                ),
            )
        return MasterDataPayload(
            route=MasterDataRoute.PROJECTS,
            record=BaswareProject(
                external_code=f"PRJ-{value.value_id}",
                project_code=value.value_id,
                project_name=name[:100],
                valid_from=VALID_FROM,
                valid_until=VALID_UNTIL,
                companies=[company],
            ),
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None


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
# of a bank's identifier (FinancialInstitutionEntity.schemeId), docs/basware-p2p.md §10.11.
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


def _order_line_coding(
    external_code: str, quantity: float | None, net_sum: float | None, coding: LineCoding
) -> list[OrderLineCoding] | None:
    if coding == LineCoding():
        return None
    return [
        OrderLineCoding(
            external_code=f"{external_code}-C0",
            row_index=0,
            allocated_quantity=quantity or 0.0,
            net_total=net_sum,
            **coding.model_dump(),
        )
    ]


def order_from_purchase_order(
    order: VismaPurchaseOrder,
    receipts: Sequence[VismaPurchaseReceipt],
    company_code: str,
    layout: CodingLayout = DEFAULT_LAYOUT,
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
                tax_code=line.tax_category.number if line.tax_category else None,
                order_line_coding=_order_line_coding(
                    f"{external_code}-{line.line_nbr}",
                    line.order_qty,
                    line.amount,
                    line_coding(
                        line.account,
                        line.sub,
                        line.tax_category.number if line.tax_category else None,
                        layout,
                    ),
                ),
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
    its EmbeddedInvoice (AccountingDocument) field (docs/basware-p2p.md §10.11)."""
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
    invoice: VismaSupplierInvoice, company_code: str, layout: CodingLayout = DEFAULT_LAYOUT
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
            coding_rows=[
                CodingRow(
                    external_code=f"{invoice.reference_number}-{line.line_number}-C0",
                    row_index=line.line_number,
                    net_total=line.cost,
                    order_number=line.po_number,
                    order_line_number=None if line.po_line_nr is None else str(line.po_line_nr),
                    **line_coding(
                        line.account,
                        line.subaccount,
                        line.vat_code.id if line.vat_code else None,
                        layout,
                    ).model_dump(),
                )
                for line in invoice.invoice_lines
            ],
        )
    except ValidationError as exc:
        raise Unmappable(preflight_reasons(exc)) from None
    pdfs = [a for a in invoice.attachments if (a.name or "").lower().endswith(".pdf")]
    return InvoicePayload(invoice=embedded, attachment_id=pdfs[0].id if pdfs else None)
