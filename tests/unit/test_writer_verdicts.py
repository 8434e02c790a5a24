"""What Basware's requestStatus means for each record the writer sent."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from basware_writer.domain import LiveUpload
from basware_writer.verdicts import (
    changed_after_upload,
    document_gone_or_rejected,
    record_verdict,
    reupload_refused,
    verdicts_from_status,
)
from mlconnector.basware.models import InvoiceStatus, RequestStatus
from mlconnector.contracts import Outcome


def status(request_state: str, items: list[dict[str, Any]]) -> RequestStatus:
    return RequestStatus.model_validate(
        {
            "requestId": "req-1",
            "requestStatus": request_state,
            "systems": [{"system": "P2P", "systemStatus": request_state, "items": items}],
        }
    )


def test_each_item_gets_its_own_outcome() -> None:
    found = verdicts_from_status(
        status(
            "Error",
            [
                {"externalCode": "ok", "status": "Success"},
                {"externalCode": "same", "status": "NotProcessed"},
                {
                    "externalCode": "bad",
                    "status": "Error",
                    "errors": [
                        {"type": "Validation", "category": "Vendor", "message": "unknown vendor"}
                    ],
                },
                {"externalCode": "old", "status": "RecordExpired"},
            ],
        ),
        ["ok", "same", "bad", "old"],
        attempts=2,
    )
    assert {code: v.outcome for code, v in found.items()} == {
        "ok": Outcome.DELIVERED,
        "same": Outcome.DELIVERED,
        "bad": Outcome.REJECTED,
        "old": Outcome.FAILED,
    }
    (reason,) = found["bad"].reasons
    assert (reason.category, reason.message) == ("Vendor", "unknown vendor")
    assert {v.request_id for v in found.values()} == {"req-1"}
    assert {v.attempts for v in found.values()} == {2}


def test_without_item_detail_the_request_state_decides() -> None:
    assert verdicts_from_status(status("Success", []), ["a"])["a"].outcome is Outcome.DELIVERED
    refused = verdicts_from_status(status("Error", []), ["a"])["a"]
    assert refused.outcome is Outcome.REJECTED
    assert "Error" in refused.reasons[0].message


def status_of(request_id: str, request_state: str, items: list[dict[str, Any]]) -> RequestStatus:
    return status(request_state, items).model_copy(update={"request_id": request_id})


def test_a_record_over_several_requests_is_accepted_when_every_code_is() -> None:
    # An order's lines split over two requests of Basware's 100-line limit.
    first = status_of("r1", "Success", [{"externalCode": "PO-1-1", "status": "Success"}])
    second = status_of("r2", "Success", [{"externalCode": "PO-1-2", "status": "NotProcessed"}])
    verdict = record_verdict(["PO-1-1", "PO-1-2"], [first, second], attempts=3)
    assert verdict.outcome is Outcome.DELIVERED
    assert (verdict.request_id, verdict.attempts) == ("r2", 3)


def test_a_record_takes_the_first_refusal_among_its_codes() -> None:
    first = status_of("r1", "Success", [{"externalCode": "PO-1-1", "status": "Success"}])
    second = status_of(
        "r2",
        "Error",
        [
            {
                "externalCode": "PO-1-2",
                "status": "Error",
                "errors": [{"category": "DataValidation", "message": "no header"}],
            }
        ],
    )
    verdict = record_verdict(["PO-1-1", "PO-1-2"], [first, second], attempts=1)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.request_id == "r2"
    assert verdict.reasons[0].message == "no header"


def test_a_code_without_item_detail_follows_the_failed_request() -> None:
    ok = status_of("r1", "Success", [{"externalCode": "a", "status": "Success"}])
    bad = status_of("r2", "Error", [])
    assert record_verdict(["a", "b"], [ok, bad], attempts=1).outcome is Outcome.REJECTED
    assert record_verdict(["a"], [ok], attempts=1).outcome is Outcome.DELIVERED


UPLOADED = LiveUpload(
    payload_hash="h1",
    uploaded=True,
    bum_id="bum-1",
    invoice_number="F-1",
    invoice_date=date(2026, 10, 20),
)


def document(state: str) -> InvoiceStatus:
    return InvoiceStatus.model_validate(
        {"invoiceId": "doc-1", "status": state, "processingStatus": "New"}
    )


def test_an_invoice_changed_after_upload_is_an_exception_naming_the_document() -> None:
    verdict = changed_after_upload(UPLOADED, [document("InApprovalProcess")])
    assert verdict.outcome is Outcome.EXCEPTION
    assert verdict.request_id == "doc-1"
    (why,) = verdict.reasons
    assert why.category == "ChangedAfterUpload"
    assert "Basware document doc-1 is in state InApprovalProcess (New)" in why.message
    unread = changed_after_upload(UPLOADED, None)
    assert "could not be read now" in unread.reasons[0].message
    assert unread.request_id == "bum-1"
    refused = reupload_refused(UPLOADED, [document("Paid")])
    assert refused.outcome is Outcome.EXCEPTION
    assert refused.reasons[0].category == "ReuploadRefused"


@pytest.mark.parametrize(
    ("upload", "found", "gone"),
    [
        (UPLOADED, [document("Rejected")], True),
        (UPLOADED, [], True),
        (UPLOADED, [document("Rejected"), document("InApprovalProcess")], False),
        (UPLOADED, [document("ReadyForPayment")], False),
        # Not confirmed and not found: it may still be on its way into Basware.
        (UPLOADED.model_copy(update={"uploaded": False}), [], False),
    ],
)
def test_a_re_upload_waits_until_no_live_document_can_remain(
    upload: LiveUpload, found: list[InvoiceStatus], gone: bool
) -> None:
    assert document_gone_or_rejected(upload, found) is gone
