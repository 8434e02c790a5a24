"""The PDF an invoice is uploaded as (docs/basware-api.md §10.2): its Visma attachment with
the structured invoice embedded, or one rendered from the invoice when it has none."""

from __future__ import annotations

from basware_writer.ports import VismaAttachments
from mlconnector.basware.invoice_pdf import embed_invoice, render_invoice_pdf
from mlconnector.mapping import InvoicePayload


class InvoicePdfMaker:
    def __init__(self, attachments: VismaAttachments) -> None:
        self._attachments = attachments

    async def pdf_of(self, payload: InvoicePayload) -> bytes:
        """Raises VismaError when the attachment cannot be read, ValueError or PyPdfError
        when it is no usable PDF."""
        if payload.attachment_id is None:
            return render_invoice_pdf(payload.invoice)
        original = await self._attachments.get_attachment(payload.attachment_id)
        return embed_invoice(original, payload.invoice)
