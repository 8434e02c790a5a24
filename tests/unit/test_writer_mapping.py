"""Visma records as Basware payloads: what Basware receives, and what it would refuse."""

from __future__ import annotations

from datetime import datetime
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
