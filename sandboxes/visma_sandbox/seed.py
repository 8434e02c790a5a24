"""Realistic Nordic demo data: suppliers with VAT ids and bank details, POs, receipts, invoices.

Deterministic for a given seed. Identifiers carry valid check digits (Norwegian MOD11
organisation and account numbers, Swedish Luhn organisation and bankgiro numbers, Danish CVR,
Finnish Y-tunnus, IBAN), so a client-side validator meets plausible values. Every supplier a
PO, receipt or invoice names exists; receipts and invoices point at real PO lines.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from visma_sandbox.config import CompanyInfo, SeedOptions
from visma_sandbox.entities import EntityName
from visma_sandbox.reference_data import (
    CLOSED_ACCOUNT,
    CREDIT_TERMS,
    closed_subaccount,
    line_subaccount,
)
from visma_sandbox.schemas import (
    Account,
    Address,
    AttachmentRef,
    Contact,
    Country,
    Dto,
    GlAccounts,
    IdDescription,
    IdName,
    Location,
    NumberDescription,
    NumberName,
    PartyRef,
    PaymentMethodDetail,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseReceipt,
    PurchaseReceiptLine,
    Supplier,
    SupplierInvoice,
    SupplierInvoiceLine,
    VatZone,
)
from visma_sandbox.timefmt import now_ms

COUNTRIES = {"NO": "Norway", "SE": "Sweden", "DK": "Denmark", "FI": "Finland"}
CURRENCIES = {"NO": "NOK", "SE": "SEK", "DK": "DKK", "FI": "EUR"}
VAT_RATES = {"NO": 0.25, "SE": 0.25, "DK": 0.25, "FI": 0.255}
LANGUAGES = {"NO": "nb-NO", "SE": "sv-SE", "DK": "da-DK", "FI": "fi-FI"}
_NAME_PARTS = {
    "NO": (
        ("Fjord", "Nordisk", "Vestland", "Trønder", "Bergens", "Polar", "Lofoten", "Hardanger"),
        ("Kontor", "Bygg", "Elektro", "Transport", "Rør", "Maskin", "Emballasje", "Trykkeri"),
        ("AS",),
    ),
    "SE": (
        ("Svea", "Göta", "Norrlands", "Skåne", "Dala", "Vasa", "Mälar", "Öresund"),
        ("Kontor", "Bygg", "El", "Frakt", "VVS", "Maskin", "Förpackning", "Tryck"),
        ("AB",),
    ),
    "DK": (
        ("Dansk", "Jysk", "Fyns", "Sjællands", "Aarhus", "Nordsø", "Limfjord", "Kattegat"),
        ("Kontor", "Byg", "El", "Transport", "VVS", "Maskin", "Emballage", "Tryk"),
        ("A/S", "ApS"),
    ),
    "FI": (
        ("Suomen", "Pohjolan", "Lapin", "Helsingin", "Tampereen", "Turun", "Saimaan", "Kalevan"),
        ("Toimisto", "Rakennus", "Sähkö", "Kuljetus", "LVI", "Kone", "Pakkaus", "Paino"),
        ("Oy",),
    ),
}
_STREETS = {
    "NO": ("Industriveien", "Storgata", "Kongens gate", "Sjøgata", "Havnegata"),
    "SE": ("Storgatan", "Industrivägen", "Kungsgatan", "Hamngatan", "Drottninggatan"),
    "DK": ("Vestergade", "Industrivej", "Havnegade", "Nørregade", "Søndergade"),
    "FI": ("Teollisuuskatu", "Mannerheimintie", "Satamakatu", "Hämeenkatu", "Kauppakatu"),
}
_CITIES = {
    "NO": (("Oslo", "0668"), ("Bergen", "5003"), ("Trondheim", "7010"), ("Tromsø", "9008")),
    "SE": (
        ("Stockholm", "111 20"),
        ("Göteborg", "411 01"),
        ("Malmö", "211 20"),
        ("Umeå", "903 26"),
    ),
    "DK": (
        ("København K", "1050"),
        ("Aarhus C", "8000"),
        ("Odense C", "5000"),
        ("Aalborg", "9000"),
    ),
    "FI": (("Helsinki", "00100"), ("Tampere", "33100"), ("Turku", "20100"), ("Oulu", "90100")),
}
_PEOPLE = (
    "Kari Nordmann",
    "Anna Svensson",
    "Mette Hansen",
    "Aino Virtanen",
    "Ola Berg",
    "Lars Nielsen",
)
_CATALOGUE = (
    ("CHAIR-01", "Office chair", "PCS", 2400.0),
    ("DESK-02", "Height-adjustable desk", "PCS", 6900.0),
    ("PAPER-A4", "Copy paper A4, 500 sheets", "BOX", 59.0),
    ("TONER-K", "Toner cartridge, black", "PCS", 890.0),
    ("CABLE-5M", "Network cable Cat6, 5 m", "PCS", 79.0),
    ("PALLET-EU", "EUR pallet", "PCS", 180.0),
    ("BOLT-M8", "Bolt M8x40, galvanised", "BOX", 145.0),
    ("PIPE-22", "Copper pipe 22 mm", "M", 96.0),
    ("LAPTOP-14", "Laptop 14 inch", "PCS", 11900.0),
    ("GLOVES-L", "Work gloves, size L", "PAIR", 49.0),
)
_SERVICES = (
    ("Consulting services", "6700"),
    ("Office rent", "6300"),
    ("Freight", "6100"),
    ("Cleaning services", "6360"),
    ("Software subscription", "6540"),
)
_TERMS = CREDIT_TERMS
BRANCH = NumberName(number="1", name="Head office")


def mod11_check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return None if check == 10 else check


def luhn_check_digit(digits: str) -> int:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _digits(rng: random.Random, n: int, first: str = "") -> str:
    return first + "".join(rng.choice("0123456789") for _ in range(n - len(first)))


def _identity(rng: random.Random, country: str) -> tuple[str, str]:
    """(corporateId, vatRegistrationId) with valid check digits."""
    while True:
        if country == "NO":
            base = _digits(rng, 8, "9")
            check = mod11_check_digit(base, (3, 2, 7, 6, 5, 4, 3, 2))
            if check is not None:
                org = f"{base}{check}"
                return org, f"NO{org}MVA"
        elif country == "SE":
            base = _digits(rng, 9, "556")
            org = f"{base}{luhn_check_digit(base)}"
            return f"{org[:6]}-{org[6:]}", f"SE{org}01"
        elif country == "DK":
            base = _digits(rng, 7, "3")
            # CVR: weights 2,7,6,5,4,3,2,1 sum to a multiple of 11.
            for last in range(10):
                cvr = f"{base}{last}"
                if (
                    sum(int(d) * w for d, w in zip(cvr, (2, 7, 6, 5, 4, 3, 2, 1), strict=True)) % 11
                    == 0
                ):
                    return cvr, f"DK{cvr}"
        else:
            base = _digits(rng, 7, "2")
            weights = (7, 9, 10, 5, 8, 4, 2)
            remainder = sum(int(d) * w for d, w in zip(base, weights, strict=True)) % 11
            if remainder != 1:
                check = 0 if remainder == 0 else 11 - remainder
                return f"{base}-{check}", f"FI{base}{check}"


def _bank_details(
    rng: random.Random, country: str
) -> tuple[str, list[PaymentMethodDetail], IdDescription]:
    """(accountUsedForPayment, supplierPaymentMethodDetails, paymentMethod)."""
    if country == "NO":
        while True:
            base = _digits(rng, 10, rng.choice(("1503", "1207", "9710", "3000")))
            check = mod11_check_digit(base, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
            if check is not None:
                account = f"{base}{check}"
                break
        detail = PaymentMethodDetail(
            payment_method_detail_id="1",
            payment_method_detail_description="Account number",
            payment_method_detail_value=account,
            payment_method_detail_banking_detail_type="BBAN",
        )
        return "BBAN", [detail], IdDescription(id="BBAN", description="Bank transfer")
    if country == "SE":
        base = _digits(rng, 7, "5")
        giro = f"{base}{luhn_check_digit(base)}"
        detail = PaymentMethodDetail(
            payment_method_detail_id="1",
            payment_method_detail_description="Bankgiro number",
            payment_method_detail_value=f"{giro[:4]}-{giro[4:]}",
            payment_method_detail_banking_detail_type="BANKGIRO",
        )
        return "BANKGIRO", [detail], IdDescription(id="BG", description="Bankgiro")
    bank = {"DK": ("3000", "DABADKKK"), "FI": ("1234", "NDEAFIHH")}[country]
    account = iban(country, bank[0] + _digits(rng, 10))
    details = [
        PaymentMethodDetail(
            payment_method_detail_id="1",
            payment_method_detail_description="IBAN",
            payment_method_detail_value=account,
            payment_method_detail_banking_detail_type="IBAN",
        ),
        PaymentMethodDetail(
            payment_method_detail_id="2",
            payment_method_detail_description="BIC/SWIFT",
            payment_method_detail_value=bank[1],
        ),
    ]
    return "IBAN", details, IdDescription(id="IBAN", description="International transfer")


def _kid(rng: random.Random) -> str:
    """A Norwegian KID payment reference (MOD10)."""
    base = _digits(rng, 12)
    return f"{base}{luhn_check_digit(base)}"


def demo_supplier(rng: random.Random, home: str, index: int) -> Supplier:
    """Supplier number 50000+index, mostly from the company's own country."""
    country = home if rng.random() < 0.6 else rng.choice(tuple(COUNTRIES))
    prefixes, trades, forms = _NAME_PARTS[country]
    name = f"{rng.choice(prefixes)} {rng.choice(trades)} {rng.choice(forms)}"
    city, postal = rng.choice(_CITIES[country])
    corporate_id, vat_id = _identity(rng, country)
    used_for_payment, details, method = _bank_details(rng, country)
    terms = rng.choice(_TERMS)
    domain = "".join(c for c in name.lower().split()[0] if c.isascii() and c.isalpha()) or "firma"
    domestic = country == home
    address = Address(
        address_id=10_000 + index,
        address_line1=f"{rng.choice(_STREETS[country])} {rng.randint(1, 120)}",
        postal_code=postal,
        city=city,
        country=Country(id=country, name=COUNTRIES[country]),
    )
    status = rng.choices(("Active", "OnHold", "Inactive"), weights=(92, 5, 3))[0]
    return Supplier(
        internal_id=1000 + index,
        number=str(50_000 + index),
        name=name,
        status=status,
        main_address=address,
        main_contact=Contact(
            contact_id=20_000 + index,
            name=name,
            attention=rng.choice(_PEOPLE),
            email=f"faktura@{domain}{index}.{country.lower()}",
            phone1=f"+{ {'NO': 47, 'SE': 46, 'DK': 45, 'FI': 358}[country] } {_digits(rng, 8)}",
        ),
        supplier_class=IdDescription(
            id=country, description="Domestic suppliers" if domestic else "Foreign suppliers"
        ),
        credit_terms=IdDescription(id=terms[0], description=terms[1]),
        document_language=LANGUAGES[country],
        currency_id=CURRENCIES[country],
        payment_method=method,
        cash_account="1920",
        charge_bearer="Shared",
        account_used_for_payment=used_for_payment,
        payment_by="DueDate",
        payment_lead_time=0,
        pay_separately=False,
        location=Location(country_id=country, id="MAIN", name="Primary location"),
        vat_registration_id=vat_id,
        corporate_id=corporate_id,
        vat_zone=VatZone(
            id="01" if domestic else "02",
            description="Domestic" if domestic else "Foreign",
            default_vat_category="3" if domestic else "0",
        ),
        gl_accounts=GlAccounts(
            supplier_account=Account(type="Liability", number="2400", description="Suppliers"),
            expense_account=Account(type="Expense", number="4000", description="Purchases"),
        ),
        supplier_payment_method_details=details,
    )


def demo_suppliers(rng: random.Random, home: str, count: int, start: int = 1) -> Iterator[Supplier]:
    for index in range(start, start + count):
        yield demo_supplier(rng, home, index)


@dataclass
class _Received:
    receipt_nbr: str
    line_nbr: int


def _party(supplier: Supplier) -> PartyRef:
    return PartyRef(internal_id=supplier.internal_id, number=supplier.number, name=supplier.name)


_CLOSED = Account(type="Expense", number=CLOSED_ACCOUNT, description="Purchases, old chart")


def _stale_coded(
    orders: list[PurchaseOrder], invoices: list[SupplierInvoice], count: int
) -> tuple[list[PurchaseOrder], list[SupplierInvoice]]:
    """`count` orders and invoices coded to the deactivated account and department: copies of
    the first seeded order (nothing received) and invoice (matched to no order), numbered
    after the others, drawing nothing from the random generator."""
    stale_orders: list[PurchaseOrder] = []
    stale_invoices: list[SupplierInvoice] = []
    for n in range(1, count + 1 if orders else 1):
        order = orders[0]
        lines = [
            line.model_copy(
                update={
                    "account": _CLOSED,
                    "sub": closed_subaccount(),
                    "qty_on_receipts": 0.0,
                    "received_amt": 0.0,
                    "completed": False,
                }
            )
            for line in order.lines
        ]
        stale_orders.append(
            order.model_copy(
                update={
                    "order_nbr": f"{len(orders) + n:06d}",
                    "status": "Open",
                    "hold": False,
                    "open_quantity": sum(line.order_qty for line in lines),
                    "open_balance": round(sum(line.amount for line in lines), 2),
                    "lines": lines,
                }
            )
        )
    for n in range(1, count + 1 if invoices else 1):
        invoice = invoices[0]
        stale_invoices.append(
            invoice.model_copy(
                update={
                    "document_type": "Invoice",
                    "reference_number": f"{len(invoices) + n:06d}",
                    "status": "Open",
                    "hold": False,
                    "supplier_reference": f"{invoice.supplier_reference}-{n}",
                    "balance": invoice.amount,
                    "invoice_lines": [
                        line.model_copy(
                            update={
                                "account": _CLOSED,
                                "subaccount": closed_subaccount(),
                                "po_number": None,
                                "po_line_nr": None,
                                "po_receipt_nbr": None,
                                "po_receipt_line_nbr": None,
                            }
                        )
                        for line in invoice.invoice_lines
                    ],
                    # Its PDF is rendered from its own fields, not shared with the original.
                    "attachments": [],
                }
            )
        )
    return stale_orders, stale_invoices


def demo_company_records(
    info: CompanyInfo, options: SeedOptions, rng: random.Random
) -> dict[EntityName, list[Dto]]:
    """One company's demo data, ready for `CompanyState.load`."""
    today = now_ms().replace(hour=0, minute=0, second=0, microsecond=0)
    suppliers = list(demo_suppliers(rng, info.country, options.suppliers))
    active = [s for s in suppliers if s.status == "Active"] or suppliers
    orders: list[PurchaseOrder] = []
    receipts: list[PurchaseReceipt] = []
    received: dict[tuple[str, int], _Received] = {}
    vat = VAT_RATES[info.country]
    for index in range(1, options.purchase_orders + 1 if active else 1):
        supplier = rng.choice(active)
        ordered = today - timedelta(days=rng.randint(1, 200))
        lines = []
        for line_nbr in range(1, rng.randint(1, 5) + 1):
            number, description, uom, cost = rng.choice(_CATALOGUE)
            qty = float(rng.randint(1, 40))
            lines.append(
                PurchaseOrderLine(
                    line_nbr=line_nbr,
                    branch=BRANCH,
                    inventory=NumberDescription(number=number, description=description),
                    line_type="GoodsForInventory",
                    warehouse=IdDescription(id="MAIN", description="Main warehouse"),
                    line_description=description,
                    uom=uom,
                    order_qty=qty,
                    unit_cost=cost,
                    ext_cost=round(qty * cost, 2),
                    amount=round(qty * cost, 2),
                    tax_category=NumberDescription(number="3", description=f"{vat:.1%} VAT"),
                    account=Account(type="Expense", number="4000", description="Purchases"),
                    sub=line_subaccount(index + line_nbr),
                    promised=ordered + timedelta(days=14),
                )
            )
        order_nbr = f"{index:06d}"
        if rng.random() < 0.6:
            receipt_nbr = f"{len(receipts) + 1:06d}"
            receipt_lines: list[PurchaseReceiptLine] = []
            for po_line in lines:
                if rng.random() < 0.8:
                    qty = (
                        po_line.order_qty
                        if rng.random() < 0.8
                        else max(1.0, po_line.order_qty // 2)
                    )
                    receipt_lines.append(
                        PurchaseReceiptLine(
                            line_nbr=len(receipt_lines) + 1,
                            branch_number=BRANCH,
                            inventory=po_line.inventory,
                            warehouse=po_line.warehouse,
                            transaction_description=po_line.line_description,
                            uom=po_line.uom,
                            order_qty=po_line.order_qty,
                            open_qty=po_line.order_qty - qty,
                            receipt_qty=qty,
                            unit_cost=po_line.unit_cost,
                            ext_cost=round(qty * po_line.unit_cost, 2),
                            amount=round(qty * po_line.unit_cost, 2),
                            po_order_type="RegularOrder",
                            po_order_nbr=order_nbr,
                            po_order_line_nbr=po_line.line_nbr,
                            complete_po_line=qty == po_line.order_qty,
                        )
                    )
                    received[(order_nbr, po_line.line_nbr)] = _Received(
                        receipt_nbr, len(receipt_lines)
                    )
            if receipt_lines:
                receipt_date = ordered + timedelta(days=rng.randint(3, 20))
                receipts.append(
                    PurchaseReceipt(
                        receipt_nbr=receipt_nbr,
                        status="Released",
                        date=receipt_date,
                        post_period=f"{receipt_date:%m%Y}",
                        warehouse=IdDescription(id="MAIN", description="Main warehouse"),
                        supplier=_party(supplier),
                        location=IdName(id="MAIN", name="Primary location"),
                        currency=supplier.currency_id,
                        exchange_rate=1.0,
                        total_qty=sum(r.receipt_qty for r in receipt_lines),
                        control_qty=sum(r.receipt_qty for r in receipt_lines),
                        total_amt=round(sum(r.amount for r in receipt_lines), 2),
                        control_total=round(sum(r.amount for r in receipt_lines), 2),
                        branch_number=BRANCH,
                        lines=receipt_lines,
                    )
                )
                by_line = {r.po_order_line_nbr: r for r in receipt_lines}
                lines = [
                    line.model_copy(
                        update={
                            "qty_on_receipts": by_line[line.line_nbr].receipt_qty,
                            "received_amt": by_line[line.line_nbr].amount,
                            "completed": bool(by_line[line.line_nbr].complete_po_line),
                        }
                    )
                    if line.line_nbr in by_line
                    else line
                    for line in lines
                ]
        line_total = round(sum(line.amount for line in lines), 2)
        tax_total = round(line_total * vat, 2)
        open_lines = [line for line in lines if not line.completed]
        order_status = rng.choices(("Open", "Closed", "Hold", "Balanced"), weights=(70, 20, 5, 5))[
            0
        ]
        orders.append(
            PurchaseOrder(
                order_type="RegularOrder",
                order_nbr=order_nbr,
                status=order_status,
                hold=order_status == "Hold",
                date=ordered,
                promised_on=ordered + timedelta(days=14),
                description=lines[0].line_description,
                supplier=_party(supplier),
                location=IdName(id="MAIN", name="Primary location"),
                branch=BRANCH,
                currency=supplier.currency_id,
                supplier_ref=f"Q-{rng.randint(1000, 9999)}",
                exchange_rate=1.0,
                terms=supplier.credit_terms,
                line_total=line_total,
                tax_total=tax_total,
                order_total=round(line_total + tax_total, 2),
                control_total=round(line_total + tax_total, 2),
                open_quantity=sum(line.order_qty - line.qty_on_receipts for line in open_lines),
                open_balance=round(sum(line.amount - line.received_amt for line in open_lines), 2),
                lines=lines,
            )
        )
    invoices: list[SupplierInvoice] = []
    by_supplier = {s.number: s for s in suppliers}
    for index in range(1, options.invoices + 1 if active else 1):
        invoice_lines: list[SupplierInvoiceLine] = []
        summary: str | None
        if orders and rng.random() < 0.7:
            order = rng.choice(orders)
            supplier = by_supplier[order.supplier.number]
            for po_line in order.lines:
                link = received.get((order.order_nbr, po_line.line_nbr))
                invoice_lines.append(
                    SupplierInvoiceLine(
                        line_number=len(invoice_lines) + 1,
                        inventory_number=po_line.inventory.number if po_line.inventory else None,
                        stock_item=True,
                        transaction_description=po_line.line_description,
                        quantity=po_line.order_qty,
                        uom=po_line.uom,
                        unit_cost=po_line.unit_cost,
                        cost=po_line.amount,
                        account=po_line.account,
                        subaccount=po_line.sub or line_subaccount(0),
                        vat_code=IdDescription(id="3", description=f"Input VAT {vat:.1%}"),
                        po_number=order.order_nbr,
                        po_line_nr=po_line.line_nbr,
                        po_receipt_nbr=link.receipt_nbr if link else None,
                        po_receipt_line_nbr=link.line_nbr if link else None,
                        branch_number=BRANCH,
                    )
                )
            summary = order.description
        else:
            supplier = rng.choice(active)
            service, account = rng.choice(_SERVICES)
            cost = float(rng.randint(5, 400) * 100)
            invoice_lines.append(
                SupplierInvoiceLine(
                    line_number=1,
                    transaction_description=service,
                    quantity=1.0,
                    unit_cost=cost,
                    cost=cost,
                    account=Account(type="Expense", number=account, description=service),
                    subaccount=line_subaccount(index),
                    vat_code=IdDescription(id="3", description=f"Input VAT {vat:.1%}"),
                    branch_number=BRANCH,
                )
            )
            summary = service
        document_type = "CreditAdj" if rng.random() < 0.05 else "Invoice"
        issued = today - timedelta(days=rng.randint(0, 120))
        terms_days = int(supplier.credit_terms.id) if supplier.credit_terms else 30
        detail_total = round(sum(line.cost for line in invoice_lines), 2)
        vat_total = round(detail_total * vat, 2)
        status = rng.choices(
            ("Open", "Balanced", "Hold", "Closed", "Prebooked"), weights=(55, 15, 10, 15, 5)
        )[0]
        amount = round(detail_total + vat_total, 2)
        supplier_reference = f"F-{issued:%Y}-{rng.randint(10_000, 99_999)}"
        invoices.append(
            SupplierInvoice(
                document_type=document_type,
                reference_number=f"{index:06d}",
                status=status,
                hold=status == "Hold",
                approval_status=rng.choice(("New", "SentToApproval", "ApprovedInApproval")),
                supplier=_party(supplier),
                supplier_reference=supplier_reference,
                description=summary,
                date=issued,
                due_date=issued + timedelta(days=terms_days),
                post_period=f"{issued:%m%Y}",
                financial_period=f"{issued:%Y%m}",
                currency_id=supplier.currency_id,
                exchange_rate=1.0,
                credit_terms=supplier.credit_terms,
                amount=amount,
                vat_amount=vat_total,
                vat_total=vat_total,
                vat_taxable_total=detail_total,
                detail_total=detail_total,
                balance=0.0 if status == "Closed" else amount,
                payment_ref_no=_kid(rng)
                if supplier.location and supplier.location.country_id == "NO"
                else None,
                payment_method=supplier.payment_method,
                tax_calculation_mode="TaxSetting",
                location=supplier.location,
                branch_number=BRANCH,
                invoice_lines=invoice_lines,
                attachments=[
                    AttachmentRef(
                        name=f"{supplier_reference}.pdf",
                        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    )
                ],
            )
        )
    stale_orders, stale_invoices = _stale_coded(orders, invoices, options.stale_coded)
    orders += stale_orders
    invoices += stale_invoices
    return {
        EntityName.SUPPLIER: list(suppliers),
        EntityName.PURCHASE_ORDER: list(orders),
        EntityName.PURCHASE_RECEIPT: list(receipts),
        EntityName.SUPPLIER_INVOICE: list(invoices),
    }
