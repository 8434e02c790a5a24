"""What Basware's requestStatus means for each record the writer sent."""

from __future__ import annotations

from typing import Any

from basware_writer.verdicts import record_verdict, verdicts_from_status
from mlconnector.basware.models import RequestStatus
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
