"""The PDF an invoice is uploaded as (docs/basware-p2p.md §10.2): its Visma attachment with
the structured invoice embedded, or one rendered from the invoice when it has none."""

from __future__ import annotations

from basware_writer.ports import VismaAttachments
from mlconnector.basware.invoice_pdf import embed_invoice, render_invoice_pdf
from mlconnector.mapping import InvoicePayload
from mlconnector.visma.ratelimit import QuotaLane


class InvoicePdfMaker:
    def __init__(self, attachments: VismaAttachments) -> None:
        self._attachments = attachments

    async def pdf_of(self, payload: InvoicePayload, lane: QuotaLane) -> bytes:
        """Raises VismaError when the attachment cannot be read, QuotaSpent when Visma's
        quota has no call left for the lane now (the download never waits: the upload is
        parked instead), ValueError or PyPdfError when it is no usable PDF."""
        if payload.attachment_id is None:
            return render_invoice_pdf(payload.invoice)
        original = await self._attachments.get_attachment(
            payload.attachment_id, lane=lane, wait_for_quota=False
        )
        return embed_invoice(original, payload.invoice)
