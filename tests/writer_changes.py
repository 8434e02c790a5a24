"""Change events for the writer's unit tests: suppliers, purchase orders and invoices of one
tenant, and where that tenant's records go in Basware."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from basware_writer.planner import Destination
from mlconnector.contracts import ChangeEvent, SupplierChanged, change_from_record
from mlconnector.visma.models import VismaPurchaseOrder, VismaSupplier, VismaSupplierInvoice

TENANT = "1000001"
TO = Destination(connection="acme", company_code="BW00", receiving_email="in@acme.example")


def supplier(number: str, name: str | None = None) -> SupplierChanged:
    record = VismaSupplier(
        number=number,
        name=name or f"Leverandør {number}",
        last_modified_date_time=datetime(2026, 11, 1),
    )
    change = change_from_record(TENANT, record)
    assert isinstance(change, SupplierChanged)
    return change


def order(number: str, supplier_number: str, lines: int = 2, **extra: Any) -> ChangeEvent:
    record = VismaPurchaseOrder.model_validate(
        {
            "orderNbr": number,
            "orderType": "RegularOrder",
            "supplier": {"number": supplier_number},
            "currency": "NOK",
            "lines": [{"lineNbr": n, "orderQty": 1.0} for n in range(1, lines + 1)],
            "lastModifiedDateTime": "2026-11-01",
            **extra,
        }
    )
    return change_from_record(TENANT, record)


def invoice(reference: str, supplier_number: str, **extra: Any) -> ChangeEvent:
    record = VismaSupplierInvoice.model_validate(
        {
            "documentType": "Invoice",
            "referenceNumber": reference,
            "supplier": {"number": supplier_number},
            "currencyId": "NOK",
            "date": "2026-10-20T00:00:00",
            "lastModifiedDateTime": "2026-11-01",
            **extra,
        }
    )
    return change_from_record(TENANT, record)
