"""The invoice follow-up as pure policy: what an uploaded invoice's state in Basware and in
Visma means, and what the connector does next (docs/basware-p2p.md §10.3).

- Basware approves: the invoice reaches WaitingForTransfer. The connector acknowledges it
  and posts a transferResponse whose voucher number is the Visma document number (the
  invoice is already booked in Visma).
- Visma shows it paid: the connector posts a paymentResponse.
- In approval, rejected, disputed, paid: recorded as InvoiceStatusChanged events (and, with
  write-back on, as the Visma invoice's note). Never a financial entry in Visma.
- Changed in Visma after its upload (the writer's `exception` result): with write-back on, a
  line of the Visma invoice's note of its own (docs/basware-p2p.md §10.8).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from mlconnector.basware import (
    AccountingDocument,
    InvoiceState,
    InvoiceStatus,
    PaymentResponse,
    TransferResponse,
)
from mlconnector.contracts import (
    EVENT_ID_NAMESPACE,
    DeliveryResult,
    Entity,
    InvoiceStatusChanged,
    Outcome,
)
from mlconnector.visma import VismaSupplierInvoice

SOURCE_SYSTEM = "Visma.net"
WAITING_FOR_TRANSFER = "WaitingForTransfer"
# Visma's AP status once the balance is settled (docs/visma-net.md §7.4, §11).
VISMA_PAID_STATUS = "Closed"


class InvoiceOutcome(StrEnum):
    IN_APPROVAL = "in_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISPUTED = "disputed"
    TRANSFERRED = "transferred"  # our transferResponse was accepted
    PAID = "paid"


class InvoiceIdentity(BaseModel):
    """What a Basware accounting document and a Visma supplier invoice share.

    The invoice number is the supplier's own (Visma `supplierReference`), which is what an
    uploaded invoice PDF shows; the Visma reference number stands in when it is missing.
    The basware-writer must build the uploaded invoice from the same function.
    """

    model_config = ConfigDict(frozen=True)

    supplier_code: str
    invoice_number: str


def visma_identity(invoice: VismaSupplierInvoice) -> InvoiceIdentity:
    return InvoiceIdentity(
        supplier_code=invoice.supplier_number,
        invoice_number=invoice.supplier_reference or invoice.reference_number,
    )


def basware_identity(document: AccountingDocument) -> InvoiceIdentity | None:
    if not document.invoice_number:
        return None
    return InvoiceIdentity(
        supplier_code=document.supplier_code, invoice_number=document.invoice_number
    )


def visma_paid(invoice: VismaSupplierInvoice) -> bool:
    return invoice.status == VISMA_PAID_STATUS and not invoice.balance


_PROCESSING_OUTCOMES: dict[str, InvoiceOutcome] = {
    "New": InvoiceOutcome.IN_APPROVAL,
    "InDocumentFilter": InvoiceOutcome.IN_APPROVAL,
    "DocumentFilterReleased": InvoiceOutcome.IN_APPROVAL,
    "WaitingForTransfer": InvoiceOutcome.APPROVED,
    "TransferInProgress": InvoiceOutcome.APPROVED,
    "TransferFailed": InvoiceOutcome.APPROVED,
    "WaitingForPrebook": InvoiceOutcome.APPROVED,
    "PrebookInProgress": InvoiceOutcome.APPROVED,
    "Prebooked": InvoiceOutcome.APPROVED,
    "Transferred": InvoiceOutcome.TRANSFERRED,
    "Paid": InvoiceOutcome.PAID,
    "WaitingToBeRemoved": InvoiceOutcome.REJECTED,
    "Removed": InvoiceOutcome.REJECTED,
    "WaitingToBeReturned": InvoiceOutcome.REJECTED,
    "Returned": InvoiceOutcome.REJECTED,
}

_STATUS_OUTCOMES: dict[InvoiceState, InvoiceOutcome] = {
    InvoiceState.IN_APPROVAL: InvoiceOutcome.IN_APPROVAL,
    InvoiceState.READY_FOR_PAYMENT: InvoiceOutcome.APPROVED,
    InvoiceState.PAID: InvoiceOutcome.PAID,
    InvoiceState.REJECTED: InvoiceOutcome.REJECTED,
}


def document_outcome(document: AccountingDocument) -> InvoiceOutcome | None:
    """The outcome a fetched accounting document shows; None for a state that says nothing."""
    if document.dispute_info is not None and document.dispute_info.is_disputed:
        return InvoiceOutcome.DISPUTED
    return _PROCESSING_OUTCOMES.get(document.processing_status)


def status_outcome(status: InvoiceStatus) -> InvoiceOutcome:
    """The outcome GET /v1/accountingDocuments/status reports."""
    if status.dispute_info is not None and status.dispute_info.is_disputed:
        return InvoiceOutcome.DISPUTED
    return _STATUS_OUTCOMES[status.status]


class FollowedInvoice(BaseModel):
    """One uploaded invoice as the follow-up knows it: the Visma side, the Basware side, and
    which of the connector's own steps are done."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    identity: InvoiceIdentity
    visma_document_type: str | None = None
    visma_reference_number: str | None = None
    visma_paid: bool = False
    visma_total: float | None = None
    visma_note: str | None = None
    basware_invoice_id: str | None = None
    company_code: str | None = None
    invoice_date: datetime | None = None
    processing_status: str | None = None
    outcome: InvoiceOutcome | None = None
    transferred: bool = False
    payment_posted: bool = False

    @property
    def visma_key(self) -> str | None:
        if self.visma_document_type is None or self.visma_reference_number is None:
            return None
        return f"{self.visma_document_type}/{self.visma_reference_number}"

    @property
    def finished(self) -> bool:
        return self.payment_posted or self.outcome in (InvoiceOutcome.REJECTED, InvoiceOutcome.PAID)


_BEFORE_TRANSFER = (InvoiceOutcome.IN_APPROVAL, InvoiceOutcome.APPROVED)
_AFTER_TRANSFER = (InvoiceOutcome.TRANSFERRED, InvoiceOutcome.PAID)


def is_news(invoice: FollowedInvoice, outcome: InvoiceOutcome) -> bool:
    """An outcome to publish for the invoice as recorded: not the one it has, and not a step
    of the approval path it is past (a document or status read before the transfer, or
    before the payment, and handled after it)."""
    if outcome == invoice.outcome:
        return False
    if outcome in _BEFORE_TRANSFER:
        return not (invoice.transferred or invoice.outcome in _AFTER_TRANSFER)
    if outcome is InvoiceOutcome.TRANSFERRED:
        return invoice.outcome is not InvoiceOutcome.PAID
    return True


def should_transfer(invoice: FollowedInvoice) -> bool:
    """Approved in Basware, booked in Visma (its number is known), not transferred yet."""
    return (
        invoice.processing_status == WAITING_FOR_TRANSFER
        and invoice.basware_invoice_id is not None
        and invoice.visma_reference_number is not None
        and not invoice.transferred
    )


def should_post_payment(invoice: FollowedInvoice) -> bool:
    return (
        invoice.visma_paid
        and invoice.transferred
        and invoice.basware_invoice_id is not None
        and not invoice.payment_posted
    )


def _external_code(invoice: FollowedInvoice, step: str) -> str:
    """The same step on the same invoice always carries the same code: a retried POST is
    recognisable in Basware instead of becoming a second response."""
    name = f"{invoice.tenant}|{invoice.basware_invoice_id}|{step}"
    return uuid.uuid5(EVENT_ID_NAMESPACE, name).hex


def transfer_response(invoice: FollowedInvoice, now: datetime) -> TransferResponse:
    return TransferResponse(
        external_code=_external_code(invoice, "transfer"),
        success=True,
        response_message=f"Booked in Visma.net as {invoice.visma_key}.",
        source_system=SOURCE_SYSTEM,
        voucher_number1=invoice.visma_reference_number,
        transfer_date=now,
        payment_block=False,
    )


def payment_response(invoice: FollowedInvoice, now: datetime) -> PaymentResponse:
    return PaymentResponse(
        external_code=_external_code(invoice, "payment"),
        success=True,
        payment_block=False,
        response_message=f"Paid in Visma.net ({invoice.visma_key}).",
        source_system=SOURCE_SYSTEM,
        payment_date=now,
        paid_total=invoice.visma_total,
    )


def status_event(
    invoice: FollowedInvoice, outcome: InvoiceOutcome, detail: str | None = None
) -> InvoiceStatusChanged:
    """One event per (invoice, outcome): seen twice, it has the same id, so consumers dedupe."""
    entity_id = invoice.visma_key or f"basware:{invoice.basware_invoice_id}"
    name = f"invoice-status|{invoice.tenant}|{entity_id}|{invoice.basware_invoice_id}|{outcome}"
    return InvoiceStatusChanged(
        event_id=str(uuid.uuid5(EVENT_ID_NAMESPACE, name)),
        tenant=invoice.tenant,
        supplier_number=invoice.identity.supplier_code,
        entity_id=entity_id,
        basware_status=outcome.value,
        detail=detail,
    )


NOTE_PREFIX = "Basware: "


def visma_note(
    existing: str | None, outcome: InvoiceOutcome, when: datetime, detail: str | None
) -> str:
    """The Visma invoice's note with its Basware line replaced (the only field ever written):
    whatever else a user wrote in the note stays."""
    line = f"{NOTE_PREFIX}{outcome.value.replace('_', ' ')} ({when:%Y-%m-%d %H:%M} UTC)"
    if detail:
        line = f"{line}: {detail}"
    kept = [x for x in (existing or "").splitlines() if x and not x.startswith(NOTE_PREFIX)]
    return "\n".join([*kept, line])


EXCEPTION_PREFIX = "Basware exception: "


def exception_note(existing: str | None, exception: str) -> str:
    """The Visma invoice's note with its exception line replaced by this one (no time in it:
    the same exception again leaves the note as it is, so writing it back never loops
    through the reader and the writer); the status line and what a user wrote stay."""
    line = f"{EXCEPTION_PREFIX}{exception}"
    kept = [x for x in (existing or "").splitlines() if x and not x.startswith(EXCEPTION_PREFIX)]
    return "\n".join([*kept, line])


def exception_of(result: DeliveryResult) -> str | None:
    """What a person must know of an invoice's exception result, in one sentence; None for
    any other result."""
    if result.entity is not Entity.SUPPLIER_INVOICE or result.outcome is not Outcome.EXCEPTION:
        return None
    message = result.reasons[0].message if result.reasons else "an exception"
    return message.split(". ", 1)[0]
