"""Accounting documents: created from uploaded invoices, moved through Basware's status machine.

Inside P2P an uploaded invoice is first in approval (processingStatus New); a failed three-way
match puts it in an exception state, shown through the API as disputeInfo. Approval makes it
WaitingForTransfer (or WaitingForPrebook); the ERP acknowledges it (TransferInProgress), posts
a transferResponse (Transferred / TransferFailed) and later a paymentResponse (Paid).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from basware_sandbox.invoices import UnreadableInvoice, midnight_utc, read_embedded_invoice
from basware_sandbox.matching import three_way_match
from basware_sandbox.records import (
    AccountingDocument,
    CodingRow,
    DisputeInfo,
    StoredDocument,
    Workflow,
)

if TYPE_CHECKING:
    from basware_sandbox.state import SandboxState, Tenant

# processingStatus an acknowledge moves on from, and where to.
ACKNOWLEDGE_MOVES = {
    "WaitingForTransfer": "TransferInProgress",
    "WaitingForPrebook": "PrebookInProgress",
    "WaitingForPrebookCancelation": "PrebookCancelationInProgress",
    "WaitingToBeCompleted": "CompletionInProgress",
    "WaitingForEnrichmentTransfer": "EnrichmentTransferInProgress",
}
TRANSFER_OPEN = frozenset({"WaitingForTransfer", "TransferInProgress", "TransferFailed"})
PREBOOK_OPEN = frozenset({"WaitingForPrebook", "PrebookInProgress", "PrebookFailed"})
KEPT_RESPONSES = 100


class TransitionRefused(Exception):
    """The document's state does not allow this step; the message says why."""


def public_status(stored: StoredDocument) -> str:
    """The `status` of GET /v1/accountingDocuments/status."""
    if stored.workflow is Workflow.REJECTED:
        return "Rejected"
    if stored.document.processing_status == "Paid" or stored.workflow is Workflow.PAID:
        return "Paid"
    if stored.workflow is Workflow.APPROVED:
        return "ReadyForPayment"
    return "InApprovalProcess"


def move(
    state: SandboxState, tenant: Tenant, stored: StoredDocument, processing_status: str
) -> None:
    stored.document.processing_status = processing_status
    stored.document.last_updated = state.clock.utcnow()
    state.notifier.document_entered(tenant, stored.document.invoice_id, processing_status)


def coded(matched: list[CodingRow], sent: list[CodingRow]) -> list[CodingRow]:
    """The matching's rows with the codes the invoice's own coding rows carry (by row)."""
    by_row = {row.row_index: row for row in sent}
    codes = (
        *("account_code", "cost_center_code", "project_code", "tax_code"),
        *(f"dim_code{n}" for n in range(1, 11)),
    )
    return [
        row.model_copy(update={c: getattr(by_row[row.row_index], c) for c in codes})
        if row.row_index in by_row
        else row
        for row in matched
    ]


def process_upload(state: SandboxState, tenant: Tenant, bum_id: str) -> None:
    upload = tenant.uploads[bum_id]
    try:
        invoice = read_embedded_invoice(upload.pdf)
    except UnreadableInvoice as exc:
        upload.outcome = f"not imported: {exc}"
        return
    invoice_id = uuid.uuid4().hex
    result = three_way_match(
        invoice.invoice_lines,
        lambda order, line: tenant.index.order_line(invoice.company_code, order, line),
        lambda line_code: tenant.matched_quantities[line_code],
    )
    now = state.clock.utcnow()
    document = AccountingDocument(
        invoice_id=invoice_id,
        bumid=bum_id,
        invoice_number=invoice.invoice_number,
        invoice_date=midnight_utc(invoice.invoice_date),
        due_date=midnight_utc(invoice.due_date) if invoice.due_date else None,
        company_code=invoice.company_code,
        supplier_code=invoice.supplier_code,
        supplier_name=invoice.supplier_name,
        currency_code=invoice.currency_code,
        net_sum=invoice.net_sum,
        tax_sum1=invoice.tax_sum1,
        gross_sum=invoice.gross_sum,
        processing_status="New",
        order_numbers=sorted({x.order_number for x in invoice.invoice_lines if x.order_number})
        or None,
        invoice_lines=invoice.invoice_lines,
        coding_rows=coded(result.coding_rows, invoice.coding_rows),
        last_updated=now,
    )
    stored = StoredDocument(document=document, workflow=Workflow.IN_APPROVAL)
    if result.matches:
        tenant.matched_quantities.update(result.matched)
    else:
        stored.workflow = Workflow.MATCHING_EXCEPTION
        stored.exceptions = result.exceptions
        document.dispute_info = DisputeInfo(
            is_disputed=True,
            dispute_reason="Matching exception: " + "; ".join(result.exceptions),
            dispute_date=now,
        )
    tenant.documents[invoice_id] = stored
    upload.invoice_id = invoice_id
    upload.outcome = "imported"
    if result.matches and state.config.auto_approve_matched_invoices:
        approve(state, invoice_id)


def upload_again(state: SandboxState, invoice_id: str) -> StoredDocument:
    """Back door: the PDF of an imported invoice uploaded once more (by someone else, or by
    mail as well), which makes a second document."""
    tenant, stored = state.find_document(invoice_id)
    original = tenant.uploads[stored.document.bumid or ""]
    bum_id = uuid.uuid4().hex
    tenant.uploads[bum_id] = original.model_copy(
        update={"bum_id": bum_id, "invoice_id": None, "outcome": None}
    )
    process_upload(state, tenant, bum_id)
    again = tenant.uploads[bum_id]
    if again.invoice_id is None:
        raise TransitionRefused(f"the second upload was not imported: {again.outcome}")
    state.changed()
    return tenant.documents[again.invoice_id]


def inject(state: SandboxState, tenant: Tenant, document: AccountingDocument) -> StoredDocument:
    """Back door: an invoice that appears directly in WaitingForTransfer or WaitingForPrebook."""
    stored = StoredDocument(document=document, workflow=Workflow.APPROVED)
    tenant.documents[document.invoice_id] = stored
    move(state, tenant, stored, document.processing_status)
    return stored


def approve(state: SandboxState, invoice_id: str, *, prebook: bool = False) -> StoredDocument:
    tenant, stored = state.find_document(invoice_id)
    if stored.workflow not in (Workflow.IN_APPROVAL, Workflow.MATCHING_EXCEPTION):
        raise TransitionRefused(f"invoice is {stored.workflow.value}, not in approval")
    stored.workflow = Workflow.APPROVED
    stored.document.dispute_info = None
    move(state, tenant, stored, "WaitingForPrebook" if prebook else "WaitingForTransfer")
    return stored


def reject(state: SandboxState, invoice_id: str, reason: str) -> StoredDocument:
    tenant, stored = state.find_document(invoice_id)
    if stored.workflow not in (Workflow.IN_APPROVAL, Workflow.MATCHING_EXCEPTION):
        raise TransitionRefused(f"invoice is {stored.workflow.value}, not in approval")
    stored.workflow = Workflow.REJECTED
    stored.document.removal_reason = reason
    move(state, tenant, stored, "WaitingToBeRemoved")
    return stored


def mark_paid(state: SandboxState, invoice_id: str) -> StoredDocument:
    tenant, stored = state.find_document(invoice_id)
    stored.workflow = Workflow.PAID
    move(state, tenant, stored, "Paid")
    return stored


def advance(state: SandboxState, invoice_id: str, processing_status: str) -> StoredDocument:
    """Back door: any processingStatus, for states the other steps do not reach."""
    tenant, stored = state.find_document(invoice_id)
    move(state, tenant, stored, processing_status)
    return stored


def acknowledge(state: SandboxState, tenant: Tenant, stored: StoredDocument) -> None:
    target = ACKNOWLEDGE_MOVES.get(stored.document.processing_status)
    if target is None:
        raise TransitionRefused(f"invoice is {stored.document.processing_status}")
    move(state, tenant, stored, target)
    state.notifier.complete_tasks(tenant, stored.document.invoice_id, "AccountingDocuments")


def _kept(
    history: list[dict[str, object]] | None, response: dict[str, object]
) -> list[dict[str, object]]:
    return [*(history or []), response][-KEPT_RESPONSES:]


def record_transfer(
    state: SandboxState, tenant: Tenant, stored: StoredDocument, response: dict[str, object]
) -> None:
    document = stored.document
    if document.processing_status not in TRANSFER_OPEN:
        raise TransitionRefused(f"invoice is {document.processing_status}; transfer is closed")
    document.transfer_responses = _kept(document.transfer_responses, response)
    if response["success"]:
        # Voucher numbers are kept only from a successful transfer.
        document.voucher_number1 = _text(response.get("voucherNumber1")) or document.voucher_number1
        document.voucher_number2 = _text(response.get("voucherNumber2")) or document.voucher_number2
    document.payment_block = bool(response["paymentBlock"])
    move(state, tenant, stored, "Transferred" if response["success"] else "TransferFailed")


def record_prebook(
    state: SandboxState, tenant: Tenant, stored: StoredDocument, response: dict[str, object]
) -> None:
    document = stored.document
    if document.processing_status not in PREBOOK_OPEN:
        raise TransitionRefused(f"invoice is {document.processing_status}; prebook is closed")
    document.prebook_responses = _kept(document.prebook_responses, response)
    document.payment_block = bool(response["paymentBlock"])
    move(state, tenant, stored, "Prebooked" if response["success"] else "PrebookFailed")


def record_payment(
    state: SandboxState,
    tenant: Tenant,
    stored: StoredDocument,
    response: dict[str, object],
    today: datetime,
) -> None:
    document = stored.document
    codes = {r.get("externalCode") for r in document.payment_responses or []}
    if response["externalCode"] in codes:
        raise TransitionRefused("a paymentResponse needs a new externalCode each time")
    # Omitted fields are cleared (the response replaces the last one); the date defaults to today.
    stored_response = {**response, "paymentDate": response.get("paymentDate") or today.isoformat()}
    document.payment_responses = _kept(document.payment_responses, stored_response)
    document.payment_block = bool(response["paymentBlock"])
    if response["success"]:
        stored.workflow = Workflow.PAID
        move(state, tenant, stored, "Paid")
    else:
        document.last_updated = state.clock.utcnow()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
