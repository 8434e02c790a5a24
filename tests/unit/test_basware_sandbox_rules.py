"""The Basware sandbox's pure parts: three-way match, webhook signatures, fault plans, schemas."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random

import pytest
from basware_reference import BASWARE_OPENAPI_DIR

from basware_sandbox.config import DEFAULT_HOSTS, WebhookSignature
from basware_sandbox.extract_schemas import PACKAGED, extract
from basware_sandbox.faults import FaultBook, FaultKind, FaultRule
from basware_sandbox.matching import three_way_match
from basware_sandbox.records import InvoiceLine
from basware_sandbox.rules import OrderLineView
from basware_sandbox.schemas import problems
from basware_sandbox.webhooks import signature_headers


def order_line(
    number: str, *, quantity: float, price: float, receipts: list[float]
) -> OrderLineView:
    return OrderLineView.model_validate(
        {
            "externalCode": f"L-{number}",
            "orderExternalCode": "PO-1",
            "lineNumber": number,
            "quantity": quantity,
            "netPrice": price,
            "goodsReceipts": [{"quantity": q} for q in receipts],
        }
    )


LINES = {
    "10": order_line("10", quantity=10, price=100, receipts=[10]),
    "20": order_line("20", quantity=5, price=50, receipts=[5, -3]),  # 3 of 5 reversed
}


def invoice_line(line: str, quantity: float, price: float) -> InvoiceLine:
    return InvoiceLine(
        order_number="4500", order_row_number=line, quantity=quantity, net_price=price
    )


def match(lines: list[InvoiceLine], matched_before: float = 0.0) -> list[str]:
    result = three_way_match(
        lines,
        lambda order, number: LINES.get(number) if order == "4500" else None,
        lambda code: matched_before,
    )
    return result.exceptions


def test_invoice_within_received_and_ordered_at_order_price_matches() -> None:
    assert match([invoice_line("10", 10, 100), invoice_line("20", 2, 50)]) == []


def test_invoicing_more_than_received_is_an_exception() -> None:
    (reason,) = match([invoice_line("20", 3, 50)])
    assert "exceeds received" in reason


def test_earlier_invoices_count_against_what_is_left() -> None:
    reasons = match([invoice_line("10", 4, 100)], matched_before=8)
    assert any("exceeds received" in r for r in reasons)
    assert any("exceeds ordered" in r for r in reasons)


def test_price_differences_beyond_tolerance_are_exceptions() -> None:
    assert match([invoice_line("10", 1, 100.5)]) == []
    (reason,) = match([invoice_line("10", 1, 110)])
    assert "differs from order price" in reason


def test_unknown_order_lines_are_exceptions_and_non_po_lines_are_not_matched() -> None:
    (reason,) = match([invoice_line("99", 1, 1)])
    assert "order line not found" in reason
    assert match([InvoiceLine(quantity=1, net_price=1)]) == []


def test_default_signature_is_lowercase_hex_hmac_of_the_raw_body() -> None:
    body = b'{"taskId":"t"}'

    headers = signature_headers(WebhookSignature(), body, "secret", 1_700_000_000)

    assert headers == {
        "x-bwapi-signature-256": hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    }


def test_signature_recipe_is_configurable() -> None:
    settings = WebhookSignature(
        header="X-Signature", encoding="base64", prefix="sha256=", timestamp_header="X-Timestamp"
    )
    body = b"{}"

    headers = signature_headers(settings, body, "secret", 1_700_000_000)

    digest = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).digest()
    assert headers == {
        "X-Signature": "sha256=" + base64.b64encode(digest).decode(),
        "X-Timestamp": "1700000000",
    }


def test_faults_apply_per_region_and_route_for_the_next_n_requests() -> None:
    eu, us = DEFAULT_HOSTS[0], DEFAULT_HOSTS[2]
    book = FaultBook(random.Random(1))
    book.add(
        FaultRule(
            kind=FaultKind.RATE_LIMIT, region=eu.region, path_prefix="/v1/vendors", remaining=2
        )
    )
    book.add(FaultRule(kind=FaultKind.SLOW, delay_ms=30))

    plans = [book.plan(eu, "POST", "/v1/vendors", bearer=True) for _ in range(3)]

    assert [p.fault.kind if p.fault else None for p in plans] == [FaultKind.RATE_LIMIT] * 2 + [None]
    assert {p.delay_ms for p in plans} == {30}
    assert book.plan(us, "POST", "/v1/vendors", bearer=True).fault is None
    assert book.plan(eu, "GET", "/v1/requestStatus/x", bearer=True).fault is None


def test_fault_probability_is_honoured() -> None:
    book = FaultBook(random.Random(7))
    book.add(FaultRule(kind=FaultKind.UNAVAILABLE, probability=0.5))

    hits = sum(
        book.plan(DEFAULT_HOSTS[0], "GET", "/", bearer=False).fault is not None for _ in range(1000)
    )

    assert 400 < hits < 600


def test_expired_token_faults_only_hit_bearer_requests() -> None:
    book = FaultBook()
    book.add(FaultRule(kind=FaultKind.EXPIRED_TOKEN))
    assert book.plan(DEFAULT_HOSTS[0], "POST", "/v1/tokens", bearer=False).fault is None
    assert book.plan(DEFAULT_HOSTS[0], "GET", "/v1/vendors", bearer=True).fault is not None


def test_packaged_schemas_are_those_of_the_reference_files() -> None:
    assert json.loads(PACKAGED.read_text(encoding="utf-8")) == extract(BASWARE_OPENAPI_DIR)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {
                "externalCode": "V",
                "vendorCode": "1",
                "name": "A",
                "companies": [{"companyCode": "C"}],
                "description": None,
            },
            [],
        ),
        (
            {
                "externalCode": "V",
                "vendorCode": "1",
                "name": "A",
                "companies": [{"companyCode": "C"}],
                "lastUpdated": "yesterday",
            },
            ["lastUpdated"],
        ),
        (
            {"externalCode": "V", "vendorCode": "1", "name": "A", "companies": [], "unknown": 1},
            [""],
        ),
    ],
)
def test_sandbox_validates_with_basware_schema(
    document: dict[str, object], expected: list[str]
) -> None:
    assert [p.path for p in problems("p2p", "VendorEntity", document)] == expected
