"""The invoice follow-up's policy: outcomes, the next step, the responses it posts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from invoice_follow_up.policy import (
    FollowedInvoice,
    InvoiceIdentity,
    InvoiceOutcome,
    basware_identity,
    document_outcome,
    exception_note,
    is_news,
    payment_response,
    should_post_payment,
    should_transfer,
    status_event,
    status_outcome,
    transfer_response,
    visma_identity,
    visma_note,
    visma_paid,
)
from mlconnector.basware import AccountingDocument, InvoiceStatus
from mlconnector.visma.models import VismaSupplierInvoice

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
IDENTITY = InvoiceIdentity(supplier_code="50012", invoice_number="F-2026-10-0042")


def visma_invoice(**fields: Any) -> VismaSupplierInvoice:
    body: dict[str, Any] = {
        "lastModifiedDateTime": "2026-10-16T08:05:42.9",
        "documentType": "Invoice",
        "referenceNumber": "000457",
        "supplier": {"number": "50012"},
        "supplierReference": "F-2026-10-0042",
        "status": "Open",
        "amount": 30000.0,
        "balance": 30000.0,
    }
    body.update(fields)
    return VismaSupplierInvoice.model_validate(body)


def document(**fields: Any) -> AccountingDocument:
    body: dict[str, Any] = {
        "invoiceId": "63255782d0a04d8d8defcc6a0062101d",
        "processingStatus": "WaitingForTransfer",
        "companyCode": "BW00",
        "supplierCode": "50012",
        "currencyCode": "NOK",
        "paymentBlock": False,
        "invoiceNumber": "F-2026-10-0042",
    }
    body.update(fields)
    return AccountingDocument.model_validate(body)


def followed(**fields: Any) -> FollowedInvoice:
    values: dict[str, Any] = {
        "tenant": "1000001",
        "identity": IDENTITY,
        "visma_document_type": "Invoice",
        "visma_reference_number": "000457",
        "visma_total": 30000.0,
        "basware_invoice_id": "63255782d0a04d8d8defcc6a0062101d",
        "processing_status": "WaitingForTransfer",
    }
    values.update(fields)
    return FollowedInvoice(**values)


def test_both_sides_name_the_invoice_alike() -> None:
    assert visma_identity(visma_invoice()) == IDENTITY
    assert basware_identity(document()) == IDENTITY
    without_reference = visma_invoice(supplierReference=None)
    assert visma_identity(without_reference).invoice_number == "000457"
    assert basware_identity(document(invoiceNumber=None)) is None


def test_visma_paid_means_closed_with_nothing_left() -> None:
    assert visma_paid(visma_invoice(status="Closed", balance=0.0))
    assert not visma_paid(visma_invoice(status="Open", balance=0.0))
    assert not visma_paid(visma_invoice(status="Closed", balance=12.5))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("New", InvoiceOutcome.IN_APPROVAL),
        ("WaitingForTransfer", InvoiceOutcome.APPROVED),
        ("TransferInProgress", InvoiceOutcome.APPROVED),
        ("Transferred", InvoiceOutcome.TRANSFERRED),
        ("Paid", InvoiceOutcome.PAID),
        ("WaitingToBeRemoved", InvoiceOutcome.REJECTED),
        ("SomethingNew", None),
    ],
)
def test_document_outcomes(status: str, outcome: InvoiceOutcome | None) -> None:
    assert document_outcome(document(processingStatus=status)) is outcome


def test_a_disputed_document_is_disputed_whatever_its_status() -> None:
    disputed = document(
        processingStatus="New", disputeInfo={"isDisputed": True, "disputeReason": "Price"}
    )
    assert document_outcome(disputed) is InvoiceOutcome.DISPUTED


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("InApprovalProcess", InvoiceOutcome.IN_APPROVAL),
        ("ReadyForPayment", InvoiceOutcome.APPROVED),
        ("Paid", InvoiceOutcome.PAID),
        ("Rejected", InvoiceOutcome.REJECTED),
    ],
)
def test_status_route_outcomes(status: str, outcome: InvoiceOutcome) -> None:
    assert status_outcome(InvoiceStatus.model_validate({"status": status})) is outcome


def test_an_outcome_is_news_once_and_never_takes_a_transferred_invoice_back() -> None:
    assert is_news(followed(), InvoiceOutcome.APPROVED)
    assert not is_news(followed(outcome=InvoiceOutcome.APPROVED), InvoiceOutcome.APPROVED)
    assert is_news(followed(outcome=InvoiceOutcome.APPROVED), InvoiceOutcome.IN_APPROVAL)
    assert is_news(followed(outcome=InvoiceOutcome.IN_APPROVAL), InvoiceOutcome.APPROVED)
    # A document read before the transfer (or the payment), handled after it.
    transferred = followed(outcome=InvoiceOutcome.TRANSFERRED, transferred=True)
    assert not is_news(transferred, InvoiceOutcome.APPROVED)
    assert not is_news(transferred, InvoiceOutcome.IN_APPROVAL)
    assert not is_news(followed(transferred=True), InvoiceOutcome.APPROVED)
    assert not is_news(followed(outcome=InvoiceOutcome.PAID), InvoiceOutcome.TRANSFERRED)
    assert is_news(transferred, InvoiceOutcome.PAID)
    assert is_news(transferred, InvoiceOutcome.DISPUTED)
    assert is_news(followed(outcome=InvoiceOutcome.APPROVED), InvoiceOutcome.REJECTED)


def test_transfer_waits_for_approval_and_for_the_visma_number() -> None:
    assert should_transfer(followed())
    assert not should_transfer(followed(processing_status="New"))
    assert not should_transfer(followed(visma_reference_number=None))
    assert not should_transfer(followed(transferred=True))


def test_payment_follows_transfer_and_visma_payment() -> None:
    assert should_post_payment(followed(transferred=True, visma_paid=True))
    assert not should_post_payment(followed(transferred=False, visma_paid=True))
    assert not should_post_payment(followed(transferred=True, visma_paid=False))
    assert not should_post_payment(followed(transferred=True, visma_paid=True, payment_posted=True))


def test_transfer_response_carries_the_visma_document_number() -> None:
    response = transfer_response(followed(), NOW)
    assert response.success
    assert response.voucher_number1 == "000457"
    assert response.transfer_date == NOW
    assert len(response.external_code) <= 36
    assert transfer_response(followed(), NOW).external_code == response.external_code
    other = followed(basware_invoice_id="ffffffffffffffffffffffffffffffff")
    assert transfer_response(other, NOW).external_code != response.external_code


def test_payment_response_has_its_own_code_and_the_paid_total() -> None:
    payment = payment_response(followed(transferred=True, visma_paid=True), NOW)
    assert payment.success
    assert payment.paid_total == 30000.0
    assert payment.payment_date == NOW
    assert payment.external_code != transfer_response(followed(), NOW).external_code


def test_status_event_ids_are_per_invoice_and_outcome() -> None:
    approved = status_event(followed(), InvoiceOutcome.APPROVED)
    assert approved.event_id == status_event(followed(), InvoiceOutcome.APPROVED).event_id
    assert approved.event_id != status_event(followed(), InvoiceOutcome.PAID).event_id
    assert (approved.tenant, approved.entity_id, approved.basware_status) == (
        "1000001",
        "Invoice/000457",
        "approved",
    )
    assert approved.key == "1000001:50012"
    unknown_in_visma = status_event(followed(visma_document_type=None), InvoiceOutcome.REJECTED)
    assert unknown_in_visma.entity_id == "basware:63255782d0a04d8d8defcc6a0062101d"


def test_visma_note_replaces_only_its_own_line() -> None:
    first = visma_note("Call the supplier first", InvoiceOutcome.APPROVED, NOW, None)
    assert first == "Call the supplier first\nBasware: approved (2026-11-25 12:30 UTC)"
    second = visma_note(first, InvoiceOutcome.DISPUTED, NOW, "Price differs")
    assert second == (
        "Call the supplier first\nBasware: disputed (2026-11-25 12:30 UTC): Price differs"
    )
    assert visma_note(None, InvoiceOutcome.IN_APPROVAL, NOW, None) == (
        "Basware: in approval (2026-11-25 12:30 UTC)"
    )


def test_an_exception_line_replaces_the_last_one_and_keeps_the_rest_of_the_note() -> None:
    existing = "Call Kari first\nBasware: in approval (2026-12-01 10:00 UTC)"
    once = exception_note(existing, "changed in Visma after upload: document D is in state S")
    assert once.splitlines() == [
        "Call Kari first",
        "Basware: in approval (2026-12-01 10:00 UTC)",
        "Basware exception: changed in Visma after upload: document D is in state S",
    ]
    # The same exception again changes nothing: writing it back does not loop.
    assert exception_note(once, "changed in Visma after upload: document D is in state S") == once
    assert exception_note(once, "x").splitlines()[-1] == "Basware exception: x"
    # A status line written later keeps the exception line.
    assert "Basware exception: x" in visma_note(
        exception_note(once, "x"), InvoiceOutcome.PAID, datetime(2026, 12, 2, tzinfo=UTC), None
    )
