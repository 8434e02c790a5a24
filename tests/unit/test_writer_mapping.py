"""Visma records as Basware payloads: what Basware receives, and what it would refuse."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from basware_writer.planner import per_record
from mlconnector.basware.models import AddressType
from mlconnector.contracts import Entity, change_from_record
from mlconnector.mapping import (
    Unmappable,
    invoice_from_supplier_invoice,
    order_from_purchase_order,
    payload_hash,
    vendor_from_supplier,
)
from mlconnector.value_checks import (
    bic_problem,
    due_date_problem,
    iban_problem,
    total_sign_problem,
    year_problem,
)
from mlconnector.visma.models import (
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaSupplier,
    VismaSupplierInvoice,
)

MODIFIED = "2026-10-14T09:21:07.31"


def supplier(**changes: Any) -> VismaSupplier:
    body: dict[str, Any] = {
        "number": "70001",
        "name": "Nordlys Elektro AS",
        "status": "Active",
        "vatRegistrationId": "NO987654321MVA",
        "corporateId": "987654321",
        "currencyId": "NOK",
        "mainAddress": {
            "addressLine1": "Storgata 1",
            "postalCode": "0155",
            "city": "Oslo",
            "country": {"id": "NO", "name": "Norway"},
        },
        "mainContact": {"name": "Kari Nordmann", "email": "kari@nordlys.no", "phone1": "+47 22"},
        "creditTerms": {"id": "30D", "description": "30 days"},
        "paymentMethod": {"id": "BANK", "description": "Bank transfer"},
        "supplierPaymentMethodDetails": [
            {
                "paymentMethodDetailDescription": "IBAN",
                "paymentMethodDetailValue": "NO9386011117947",
            }
        ],
        "lastModifiedDateTime": MODIFIED,
        "timeStamp": "AAAAAAAB",
        **changes,
    }
    return VismaSupplier.model_validate(body)


def purchase_order(**changes: Any) -> VismaPurchaseOrder:
    body: dict[str, Any] = {
        "orderNbr": "000123",
        "orderType": "RegularOrder",
        "status": "Open",
        "supplier": {"number": "70001", "name": "Nordlys Elektro AS"},
        "currency": "NOK",
        "date": "2026-10-01T00:00:00",
        "lines": [
            {"lineNbr": 1, "orderQty": 10, "unitCost": 25.0, "amount": 250.0, "uom": "PCS"},
            {"lineNbr": 2, "orderQty": 4, "unitCost": 100.0, "amount": 400.0, "uom": "PCS"},
        ],
        "lastModifiedDateTime": MODIFIED,
        **changes,
    }
    return VismaPurchaseOrder.model_validate(body)


def receipt(number: str, qty: float, *, kind: str = "Receipt") -> VismaPurchaseReceipt:
    return VismaPurchaseReceipt.model_validate(
        {
            "receiptNbr": number,
            "receiptType": kind,
            "supplier": {"number": "70001"},
            "date": "2026-10-05T00:00:00",
            "lines": [
                {"lineNbr": 1, "receiptQty": qty, "poOrderNbr": "000123", "poOrderLineNbr": 1},
                {"lineNbr": 2, "receiptQty": 99, "poOrderNbr": "OTHER", "poOrderLineNbr": 1},
            ],
            "lastModifiedDateTime": MODIFIED,
        }
    )


def invoice(**changes: Any) -> VismaSupplierInvoice:
    body: dict[str, Any] = {
        "documentType": "Invoice",
        "referenceNumber": "004711",
        "supplierReference": "INV-2026-88",
        "supplier": {"number": "70001", "name": "Nordlys Elektro AS"},
        "currencyId": "NOK",
        "date": "2026-10-16T00:00:00",
        "dueDate": "2026-11-15T00:00:00",
        "amount": 812.5,
        "vatTotal": 162.5,
        "detailTotal": 650.0,
        "invoiceLines": [
            {
                "lineNumber": 1,
                "quantity": 10,
                "unitCost": 25.0,
                "cost": 250.0,
                "poNumber": "000123",
                "poLineNr": 1,
            }
        ],
        "attachments": [{"id": "a-1", "name": "scan.PDF"}],
        "lastModifiedDateTime": MODIFIED,
        **changes,
    }
    return VismaSupplierInvoice.model_validate(body)


def test_supplier_becomes_a_vendor_upserted_by_its_number() -> None:
    vendor = vendor_from_supplier(supplier(), "BW00").vendor
    body = vendor.payload()
    assert (body["externalCode"], body["vendorCode"], body["name"]) == (
        "70001",
        "70001",
        "Nordlys Elektro AS",
    )
    assert body["companies"] == [{"companyCode": "BW00"}]
    assert {i["schemeId"]: i["id"] for i in body["identifiers"]} == {
        "VAT": "NO987654321MVA",
        "ORG": "987654321",
    }
    (address,) = vendor.addresses or []
    assert (address.address_type, address.city_name, address.country_id) == (
        AddressType.POSTAL,
        "Oslo",
        "NO",
    )
    account = body["paymentMeans"][0]["financialAccounts"][0]["financialAccountIdentifiers"][0]
    assert (account["schemeId"], account["id"]) == ("IBAN", "NO9386011117947")
    assert body["paymentTerms"]["paymentTermCode"] == "30D"


def test_a_name_longer_than_basware_allows_is_refused_naming_the_field() -> None:
    with pytest.raises(Unmappable) as refused:
        vendor_from_supplier(supplier(name="N" * 251), "BW00")
    (reason,) = refused.value.reasons
    assert reason.field == "name"
    assert reason.category == "Preflight"
    assert "250" in reason.message


def test_purchase_order_lines_carry_their_receipts_and_returns_count_negative() -> None:
    payload = order_from_purchase_order(
        purchase_order(), [receipt("R1", 6), receipt("R2", 1, kind="Return")], "BW00"
    )
    assert payload.order.external_code == "RegularOrder-000123"
    assert payload.order.supplier_code == "70001"
    first, second = payload.lines
    assert first.order_external_code == payload.order.external_code
    assert [(g.goods_receipt_number, g.quantity) for g in first.goods_receipts or []] == [
        ("R1", 6.0),
        ("R2", -1.0),
    ]
    assert second.goods_receipts is None


def test_purchase_order_without_currency_is_refused_before_any_call() -> None:
    with pytest.raises(Unmappable) as refused:
        order_from_purchase_order(purchase_order(currency=None), [], "BW00")
    assert refused.value.reasons[0].field in {"currency_code", "currencyCode"}


def test_invoice_keeps_the_supplier_number_and_its_order_references() -> None:
    payload = invoice_from_supplier_invoice(invoice(), "BW00")
    embedded = payload.invoice
    assert (embedded.invoice_number, embedded.supplier_code) == ("INV-2026-88", "70001")
    assert (embedded.net_sum, embedded.tax_sum1, embedded.gross_sum) == (650.0, 162.5, 812.5)
    (line,) = embedded.invoice_lines
    assert (line.order_number, line.order_row_number) == ("000123", "1")
    assert payload.attachment_id == "a-1"
    without_reference = invoice_from_supplier_invoice(invoice(supplierReference=None), "BW00")
    assert without_reference.invoice.invoice_number == "004711"


def test_invoice_without_a_date_is_refused() -> None:
    with pytest.raises(Unmappable) as refused:
        invoice_from_supplier_invoice(invoice(date=None), "BW00")
    assert refused.value.reasons[0].field == "invoiceDate"


def test_payload_hash_ignores_what_basware_never_sees() -> None:
    original = vendor_from_supplier(supplier(), "BW00")
    touched = vendor_from_supplier(
        supplier(
            note="called them", timeStamp="AAAAAAAC", lastModifiedDateTime="2026-11-01T00:00:00"
        ),
        "BW00",
    )
    renamed = vendor_from_supplier(supplier(name="Nordlys Elektro ASA"), "BW00")
    assert payload_hash(original) == payload_hash(touched)
    assert payload_hash(original) != payload_hash(renamed)


def test_only_the_latest_change_of_a_record_is_delivered() -> None:
    first = change_from_record("1000001", supplier(name="Old name"))
    other = change_from_record("1000001", supplier(number="70002"))
    last = change_from_record("1000001", supplier(name="New name"))
    groups = per_record([first, other, last])
    assert [(g[-1].entity, g[-1].entity_id) for g in groups] == [
        (Entity.SUPPLIER, "70002"),
        (Entity.SUPPLIER, "70001"),
    ]
    # The superseded change stays with its record, to share the outcome of the last one.
    assert [c.event_id for c in groups[1]] == [first.event_id, last.event_id]


def test_visma_timestamps_are_read_as_utc() -> None:
    payload = order_from_purchase_order(purchase_order(), [], "BW00")
    assert payload.order.created == datetime.fromisoformat("2026-10-01T00:00:00+00:00")


# --- preflight of values (docs/basware-p2p.md §10.11) ---


@pytest.mark.parametrize(
    "iban", ["NO9386011117947", "GB29 NWBK 6016 1331 9268 19", "fi2112345600000785"]
)
def test_a_valid_iban_passes(iban: str) -> None:
    assert iban_problem(iban) is None


def test_an_iban_with_wrong_check_digits_fails_mod_97() -> None:
    problem = iban_problem("NO9486011117947")
    assert problem is not None
    assert "mod 97" in problem


def test_a_value_that_is_no_iban_at_all_fails_without_repeating_it() -> None:
    problem = iban_problem("NO00 INVALID IBAN !!")
    assert problem is not None
    assert "not an IBAN" in problem
    assert "INVALID" not in problem


@pytest.mark.parametrize("bic", ["DABADKKK", "NDEAFIHH", "NDEAGB2LXXX"])
def test_a_valid_bic_passes(bic: str) -> None:
    assert bic_problem(bic) is None


@pytest.mark.parametrize("bic", ["DABA", "1234DKKK", "NDEAGB2LXX", "NDEA GB !!"])
def test_a_malformed_bic_fails(bic: str) -> None:
    assert bic_problem(bic) is not None


def test_years_outside_the_sane_range_fail() -> None:
    assert year_problem(date(2026, 10, 16)) is None
    assert year_problem(date(9999, 12, 31)) is not None
    assert year_problem(date(1, 1, 1)) is not None


def test_a_due_date_before_the_invoice_date_fails() -> None:
    assert due_date_problem(date(2026, 10, 16), date(2026, 11, 15)) is None
    assert due_date_problem(date(2026, 10, 16), date(2026, 10, 16)) is None
    assert due_date_problem(date(2026, 10, 16), date(2026, 10, 15)) is not None


def test_totals_are_never_negative_in_visma_whatever_the_type() -> None:
    assert total_sign_problem("Invoice", 812.5) is None
    assert total_sign_problem("CreditAdj", 812.5) is None
    assert total_sign_problem("Invoice", 0.0) is None
    bill = total_sign_problem("Invoice", -45125.0)
    assert bill is not None
    assert "bill" in bill
    assert total_sign_problem("CreditAdj", -1.0) is not None


def refused_fields(error: pytest.ExceptionInfo[Unmappable]) -> dict[str, str]:
    assert {r.category for r in error.value.reasons} == {"Preflight"}
    return {r.field or "": r.message for r in error.value.reasons}


def test_a_negative_bill_total_is_rejected_naming_grosssum() -> None:
    with pytest.raises(Unmappable) as refused:
        invoice_from_supplier_invoice(invoice(amount=-45125.0), "BW00")
    assert set(refused_fields(refused)) == {"grossSum"}


def test_a_credit_note_reaches_basware_negative() -> None:
    embedded = invoice_from_supplier_invoice(invoice(documentType="CreditAdj"), "BW00").invoice
    assert (embedded.gross_sum, embedded.net_sum, embedded.tax_sum1) == (-812.5, -650.0, -162.5)
    assert [line.net_sum for line in embedded.invoice_lines] == [-250.0]
    bill = invoice_from_supplier_invoice(invoice(), "BW00").invoice
    assert bill.gross_sum == 812.5


def test_an_invoice_of_year_9999_due_in_year_1_is_rejected_naming_both_dates() -> None:
    with pytest.raises(Unmappable) as refused:
        invoice_from_supplier_invoice(
            invoice(date="9999-12-31T00:00:00", dueDate="0001-01-01T00:00:00"), "BW00"
        )
    fields = refused_fields(refused)
    assert set(fields) == {"invoiceDate", "dueDate"}
    assert "9999" in fields["invoiceDate"]
    assert "before the invoice date" in fields["dueDate"]


def test_a_bad_iban_is_rejected_naming_its_field_and_not_its_value() -> None:
    details = [
        {
            "paymentMethodDetailDescription": "IBAN",
            "paymentMethodDetailValue": "NO00 INVALID IBAN !!",
        }
    ]
    with pytest.raises(Unmappable) as refused:
        vendor_from_supplier(supplier(supplierPaymentMethodDetails=details), "BW00")
    fields = refused_fields(refused)
    assert set(fields) == {"paymentMeans.0.financialAccounts.0.financialAccountIdentifiers.0.id"}
    assert "INVALID" not in str(refused.value.reasons)


def test_a_bad_bic_is_rejected_naming_the_financial_institution() -> None:
    details = [
        {"paymentMethodDetailDescription": "IBAN", "paymentMethodDetailValue": "NO9386011117947"},
        {"paymentMethodDetailDescription": "BIC/SWIFT", "paymentMethodDetailValue": "NOT A BIC"},
    ]
    with pytest.raises(Unmappable) as refused:
        vendor_from_supplier(supplier(supplierPaymentMethodDetails=details), "BW00")
    assert set(refused_fields(refused)) == {
        "paymentMeans.0.financialAccounts.0.financialInstitution.id"
    }


def test_bank_details_are_sent_with_the_schemes_basware_accepts() -> None:
    details = [
        {
            "paymentMethodDetailDescription": "Account number",
            "paymentMethodDetailValue": "15036021448",
            "paymentMethodDetailBankingDetailType": "BBAN",
        },
        {
            "paymentMethodDetailDescription": "Account number",
            "paymentMethodDetailValue": "1207 11 22334",
        },
        {
            "paymentMethodDetailDescription": "Bankgiro number",
            "paymentMethodDetailValue": "5051-6905",
            "paymentMethodDetailBankingDetailType": "BANKGIRO",
        },
        {
            "paymentMethodDetailDescription": "IBAN",
            "paymentMethodDetailValue": "fi21 1234 5600 0007 85",
        },
        {"paymentMethodDetailDescription": "BIC/SWIFT", "paymentMethodDetailValue": "NDEAFIHH"},
    ]
    vendor = vendor_from_supplier(supplier(supplierPaymentMethodDetails=details), "BW00").vendor
    (account,) = vendor.payload()["paymentMeans"][0]["financialAccounts"]
    assert [(i["schemeId"], i["id"]) for i in account["financialAccountIdentifiers"]] == [
        ("BBAN", "15036021448"),
        ("BBAN", "12071122334"),
        ("BBAN", "5051-6905"),
        ("IBAN", "FI2112345600000785"),
    ]
    assert account["financialInstitution"] == {
        "id": "NDEAFIHH",
        "name": "NDEAFIHH",
        "schemeId": "BIC",
    }
