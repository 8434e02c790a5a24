"""Invoice PDFs for SmartPDF upload, carrying the structured invoice as an embedded file.

Basware extracts invoice data from the PDF itself. The local sandbox cannot, so the connector
embeds the invoice as JSON inside the PDF, the way Factur-X / ZUGFeRD embed their XML; the
real service ignores the attachment. JSON names are those of Basware's AccountingDocumentEntity.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, time

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, IndirectObject, NameObject, NumberObject

from mlconnector.basware.models import CodingRow, InvoiceLine

EMBEDDED_INVOICE_FILENAME = "basware-invoice.json"


class EmbeddedInvoice(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, frozen=True
    )

    invoice_number: str
    invoice_date: date
    due_date: date | None = None
    company_code: str
    supplier_code: str
    supplier_name: str | None = None
    currency_code: str
    net_sum: float | None = None
    tax_sum1: float | None = None
    gross_sum: float | None = None
    invoice_lines: list[InvoiceLine] = []
    # One coding row per line (AccountingDocumentEntity.codingRows): account, cost center,
    # project and tax code as Visma's line names them, mapped.
    coding_rows: list[CodingRow] = []

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def render_invoice_pdf(invoice: EmbeddedInvoice) -> bytes:
    """A one-page invoice PDF with the invoice embedded; the same invoice gives the same bytes."""
    # Imported here: fpdf (with fontTools) adds about 15 MB to the writer at import (97 vs
    # 82 MB), and the writer renders only the invoices that come without a Visma attachment.
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(_moment(invoice.invoice_date))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, f"Invoice {invoice.invoice_number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    header = [
        f"Supplier: {invoice.supplier_name or ''} ({invoice.supplier_code})",
        f"Buyer company: {invoice.company_code}",
        f"Invoice date: {invoice.invoice_date.isoformat()}",
        f"Due date: {invoice.due_date.isoformat() if invoice.due_date else '-'}",
    ]
    for text in header:
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 9)
    widths = (12, 60, 30, 22, 30, 30)
    for width, title in zip(
        widths, ("#", "Item", "Order/line", "Qty", "Unit price", "Net"), strict=True
    ):
        pdf.cell(width, 6, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for position, line in enumerate(invoice.invoice_lines, start=1):
        order = f"{line.order_number or ''}/{line.order_row_number or ''}".strip("/")
        cells = (
            str(position),
            (line.product_name or line.product_code or "")[:40],
            order,
            "" if line.quantity is None else f"{line.quantity:g}",
            _money(line.net_price),
            _money(line.net_sum),
        )
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 6, text, border=1)
        pdf.ln()
    pdf.ln(4)
    for label, amount in (
        ("Net", invoice.net_sum),
        ("Tax", invoice.tax_sum1),
        ("Total", invoice.gross_sum),
    ):
        pdf.cell(
            0,
            6,
            f"{label}: {_money(amount)} {invoice.currency_code}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.embed_file(
        bytes=invoice.to_json_bytes(),
        basename=EMBEDDED_INVOICE_FILENAME,
        modification_date=_moment(invoice.invoice_date),
        mime_type="application/json",
        desc="Structured invoice (Basware AccountingDocument field names)",
    )
    return bytes(pdf.output())


def embed_invoice(pdf: bytes, invoice: EmbeddedInvoice) -> bytes:
    """An existing invoice PDF (e.g. the Visma attachment) with the invoice embedded in it.

    Raises ValueError or PyPdfError when it is no usable PDF, or carries an invoice already.
    """
    data = invoice.to_json_bytes()
    appended = _appended_attachment(pdf, EMBEDDED_INVOICE_FILENAME, data)
    if appended is not None:
        return appended
    reader = PdfReader(io.BytesIO(pdf))
    if EMBEDDED_INVOICE_FILENAME in reader.attachments:
        raise ValueError(f"the PDF already carries {EMBEDDED_INVOICE_FILENAME}")
    writer = PdfWriter(clone_from=reader)
    writer.add_attachment(EMBEDDED_INVOICE_FILENAME, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")


def _appended_attachment(pdf: bytes, name: str, data: bytes) -> bytes | None:
    """The PDF with a file attached by an incremental update: its bytes stay as they are, and
    the file, its specification, a names dictionary and the catalog's new version follow,
    with an xref section of their own. A third of the time of rewriting the whole document.
    None when the document needs the full rewrite: an xref stream, encryption, or a names
    dictionary already there (which may hold attachments to merge with)."""
    found = _STARTXREF.search(pdf[-64:])
    if found is None:
        return None
    previous = int(found.group(1))
    if pdf[previous : previous + 4] != b"xref":
        return None
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer.raw_get("/Root")
    if reader.is_encrypted or not isinstance(root, IndirectObject):
        return None
    catalog = root.get_object()
    if not isinstance(catalog, DictionaryObject) or "/Names" in catalog:
        return None
    size = reader.trailer.get("/Size")  # the next object number
    if not isinstance(size, NumberObject):
        return None
    file_number, spec_number, names_number = size, size + 1, size + 2
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    offsets: dict[int, tuple[int, int]] = {}

    def put(number: int, generation: int, content: bytes) -> None:
        offsets[number] = (len(out), generation)
        out.extend(b"%d %d obj\n%s\nendobj\n" % (number, generation, content))

    label = b"(" + name.encode("ascii") + b")"
    put(
        file_number,
        0,
        b"<< /Type /EmbeddedFile /Length %d >>\nstream\n%s\nendstream" % (len(data), data),
    )
    put(
        spec_number,
        0,
        b"<< /Type /Filespec /F %s /UF %s /EF << /F %d 0 R >> >>" % (label, label, file_number),
    )
    put(names_number, 0, b"<< /EmbeddedFiles << /Names [ %s %d 0 R ] >> >>" % (label, spec_number))
    updated = DictionaryObject(catalog)
    updated[NameObject("/Names")] = IndirectObject(names_number, 0, reader)
    put(root.idnum, root.generation, _serialised(updated))
    trailer = DictionaryObject(
        {NameObject(k): reader.trailer.raw_get(k) for k in reader.trailer if k != "/XRefStm"}
    )
    trailer[NameObject("/Size")] = NumberObject(size + 3)
    trailer[NameObject("/Prev")] = NumberObject(previous)
    xref_at = len(out)
    # Object 0 heads the free list in every xref section, as readers expect.
    out += b"xref\n0 1\n0000000000 65535 f\r\n"
    for number in sorted(offsets):
        offset, generation = offsets[number]
        out += b"%d 1\n%010d %05d n\r\n" % (number, offset, generation)
    out += b"trailer\n%s\nstartxref\n%d\n%%%%EOF\n" % (_serialised(trailer), xref_at)
    return bytes(out)


def _serialised(value: DictionaryObject) -> bytes:
    stream = io.BytesIO()
    value.write_to_stream(stream)
    return stream.getvalue()
