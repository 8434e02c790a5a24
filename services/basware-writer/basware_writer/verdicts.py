"""What Basware's answers mean for each record: pure policy, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from basware_writer.domain import LiveUpload, Verdict, reason
from mlconnector.basware.errors import BaswareRejected
from mlconnector.basware.models import (
    InvoiceState,
    InvoiceStatus,
    ItemState,
    RequestState,
    RequestStatus,
    RequestStatusItem,
)
from mlconnector.contracts import BaswareReason, Outcome

# A POST's 200 only says the payload is schema-valid; these item states say Basware took it.
# NotProcessed is Basware's answer to an identical re-post: the record is already there.
ACCEPTED_ITEM_STATES = frozenset({ItemState.SUCCESS, ItemState.WARNING, ItemState.NOT_PROCESSED})
ACCEPTED_REQUEST_STATES = frozenset({RequestState.SUCCESS, RequestState.ACKNOWLEDGED_SUCCESS})


def item_verdict(
    status: RequestStatus, item: RequestStatusItem | None, *, attempts: int
) -> Verdict:
    """One external code's outcome in a final request; `item` None: no per-item answer."""
    if item is None:
        # No per-item detail: the request's own state speaks for every record in it.
        if status.request_status in ACCEPTED_REQUEST_STATES:
            verdict = Verdict(outcome=Outcome.DELIVERED)
        else:
            verdict = Verdict(
                outcome=Outcome.REJECTED,
                reasons=(
                    BaswareReason(
                        category="RequestStatus",
                        message=f"request ended {status.request_status.value} "
                        "without a per-item answer",
                    ),
                ),
            )
    elif item.status in ACCEPTED_ITEM_STATES:
        verdict = Verdict(outcome=Outcome.DELIVERED)
    elif item.status is ItemState.ERROR:
        verdict = Verdict(
            outcome=Outcome.REJECTED,
            reasons=tuple(
                BaswareReason(
                    code=error.type,
                    category=error.category,
                    message=error.message or "Basware reported an error without a message",
                )
                for error in item.errors or []
            )
            or (BaswareReason(message="Basware reported Error without details"),),
        )
    else:
        # RecordExpired, Unpublished, or still InProgress in a final request: not
        # accepted, and not Basware's verdict on the content, so it is worth a replay.
        verdict = Verdict(
            outcome=Outcome.FAILED,
            reasons=(
                BaswareReason(category="RequestStatus", message=f"item ended {item.status.value}"),
            ),
        )
    return verdict.model_copy(update={"request_id": status.request_id, "attempts": attempts})


def verdicts_from_status(
    status: RequestStatus, external_codes: Sequence[str], *, attempts: int = 1
) -> dict[str, Verdict]:
    """Per-record outcomes of a final requestStatus, by external code."""
    items = {item.external_code: item for item in status.items if item.external_code}
    return {
        code: item_verdict(status, items.get(code), attempts=attempts) for code in external_codes
    }


class StatusIndex:
    """Final requestStatus answers, with each external code's item found once."""

    def __init__(self, statuses: Iterable[RequestStatus]) -> None:
        self.items: dict[str, tuple[RequestStatus, RequestStatusItem]] = {
            item.external_code: (status, item)
            for status in statuses
            for item in status.items
            if item.external_code
        }


def record_verdict(
    codes: Sequence[str],
    statuses: Sequence[RequestStatus],
    *,
    attempts: int,
    index: StatusIndex | None = None,
) -> Verdict:
    """One record's outcome over the final requests that carried its external codes (a
    vendor's one code, a header's, or an order's lines, which may span requests): accepted
    when every code is, else the first refusal."""
    if not statuses:
        raise ValueError("a record's verdict needs the status of at least one request")
    found = (index or StatusIndex(statuses)).items
    refusing = [s for s in statuses if s.request_status not in ACCEPTED_REQUEST_STATES]
    for code in codes:
        if code in found:
            status, item = found[code]
            verdict = item_verdict(status, item, attempts=attempts)
        else:
            # No per-item answer for this code: the request states speak for it.
            verdict = item_verdict(
                refusing[0] if refusing else statuses[-1], None, attempts=attempts
            )
        if not verdict.accepted:
            return verdict
    return Verdict(outcome=Outcome.DELIVERED, attempts=attempts, request_id=statuses[-1].request_id)


def rejected_by_http(exc: BaswareRejected, *, attempts: int) -> Verdict:
    return Verdict(
        outcome=Outcome.REJECTED,
        attempts=attempts,
        reasons=tuple(
            BaswareReason(
                code=detail.code or str(exc.status), category=detail.type, message=detail.message
            )
            for detail in exc.errors
        )
        or (BaswareReason(code=str(exc.status), message=str(exc)),),
    )


def failed(message: str, *, attempts: int, category: str = "Delivery") -> Verdict:
    return Verdict(
        outcome=Outcome.FAILED,
        attempts=attempts,
        reasons=(BaswareReason(category=category, message=message),),
    )


# --- an invoice changed in Visma after its upload (docs/basware-p2p.md §10.8) ---


def document_standing(live: LiveUpload, documents: Sequence[InvoiceStatus] | None) -> str:
    """Where the invoice's Basware document is, in words; `documents` None: not read now."""
    if documents is None:
        return f"the state of its Basware document (bumId {live.bum_id}) could not be read now"
    if documents:
        return "; ".join(
            f"Basware document {d.invoice_id or '(no id)'} is in state {d.status.value}"
            + (f" ({d.processing_status})" if d.processing_status else "")
            for d in documents
        )
    if not live.uploaded:
        return f"its upload (bumId {live.bum_id}) is not confirmed yet"
    return f"Basware shows no document for its upload (bumId {live.bum_id})"


def document_gone_or_rejected(live: LiveUpload, documents: Sequence[InvoiceStatus]) -> bool:
    """Whether a re-upload can no longer make a second live document."""
    if documents:
        return all(d.status is InvoiceState.REJECTED for d in documents)
    return live.uploaded


def _document_id(live: LiveUpload, documents: Sequence[InvoiceStatus] | None) -> str | None:
    found = [d.invoice_id for d in documents or () if d.invoice_id]
    return found[0] if found else live.bum_id


def changed_after_upload(live: LiveUpload, documents: Sequence[InvoiceStatus] | None) -> Verdict:
    """A later Visma version of an uploaded invoice: not uploaded, an exception for a person."""
    return Verdict(
        outcome=Outcome.EXCEPTION,
        attempts=0,
        request_id=_document_id(live, documents),
        reasons=reason(
            "ChangedAfterUpload",
            f"changed in Visma after upload: {document_standing(live, documents)}. Not "
            "uploaded again; once Basware's document is rejected or gone, `mlconnector "
            "replay record --force --reason ...` uploads this version",
        ),
    )


def reupload_refused(live: LiveUpload, documents: Sequence[InvoiceStatus] | None) -> Verdict:
    return Verdict(
        outcome=Outcome.EXCEPTION,
        attempts=0,
        request_id=_document_id(live, documents),
        reasons=reason(
            "ReuploadRefused",
            f"re-upload refused: {document_standing(live, documents)}. A forced re-upload "
            "is made only once Basware's document is rejected or gone",
        ),
    )
