"""Invoice PDFs that carry the structured invoice, read back by the sandbox's own reader (the
stand-in for Basware's extraction, an independent reading of the same file)."""

from __future__ import annotations

import io
from datetime import date

import pytest
from fpdf import FPDF
from pydantic import BaseModel
from pypdf import PdfReader

from basware_sandbox.invoices import UnreadableInvoice
from basware_sandbox.invoices import read_embedded_invoice as sandbox_read
from mlconnector.basware.invoice_pdf import EmbeddedInvoice, embed_invoice, render_invoice_pdf
from mlconnector.basware.models import InvoiceLine

INVOICE = EmbeddedInvoice(
    invoice_number="INV-42",
    invoice_date=date(2024, 5, 20),
    due_date=date(2024, 6, 19),
    company_code="BW00",
    supplier_code="100234",
    supplier_name="Acme Industrial Supplies Ltd",
    currency_code="EUR",
    net_sum=1000,
    tax_sum1=240,
    gross_sum=1240,
    invoice_lines=[
        InvoiceLine(
            row_index=0,
            order_number="4500012345",
            order_row_number="10",
            quantity=10,
            net_price=100,
            net_sum=1000,
        )
    ],
)


def as_sent(invoice: BaseModel) -> dict[str, object]:
    """An invoice by its Basware field names, whichever side's model holds it."""
    return invoice.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_rendering_is_a_pure_function() -> None:
    assert render_invoice_pdf(INVOICE) == render_invoice_pdf(INVOICE)
    assert render_invoice_pdf(INVOICE) != render_invoice_pdf(
        INVOICE.model_copy(update={"gross_sum": 1})
    )


def test_the_embedded_invoice_reads_back_in_the_sandbox() -> None:
    pdf = render_invoice_pdf(INVOICE)

    assert pdf.startswith(b"%PDF")
    assert as_sent(sandbox_read(pdf)) == as_sent(INVOICE)
    seen_by_sandbox = sandbox_read(pdf)
    assert (seen_by_sandbox.invoice_number, seen_by_sandbox.invoice_date) == (
        "INV-42",
        date(2024, 5, 20),
    )
    assert seen_by_sandbox.invoice_lines[0].order_row_number == "10"
    assert seen_by_sandbox.gross_sum == 1240


def test_an_existing_pdf_gets_the_invoice_embedded_once() -> None:
    plain = FPDF()
    plain.add_page()
    original = bytes(plain.output())
    with pytest.raises(UnreadableInvoice, match="no embedded"):
        sandbox_read(original)

    enriched = embed_invoice(original, INVOICE)

    assert as_sent(sandbox_read(enriched)) == as_sent(INVOICE)
    with pytest.raises(ValueError, match="already carries"):
        embed_invoice(enriched, INVOICE)


def test_a_plain_pdf_is_kept_byte_for_byte_and_the_invoice_follows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = FPDF()
    plain.add_page()
    plain.add_page()
    original = bytes(plain.output())

    enriched = embed_invoice(original, INVOICE)

    assert enriched.startswith(original)
    reader = PdfReader(io.BytesIO(enriched), strict=True)
    assert len(reader.pages) == 2
    assert as_sent(sandbox_read(enriched)) == as_sent(INVOICE)
    assert sandbox_read(enriched).invoice_number == "INV-42"
    assert caplog.records == []


def test_the_sandbox_refuses_pdfs_without_an_invoice() -> None:
    plain = FPDF()
    plain.add_page()
    with pytest.raises(UnreadableInvoice, match="no embedded"):
        sandbox_read(bytes(plain.output()))
    with pytest.raises(UnreadableInvoice, match="not a readable PDF"):
        sandbox_read(b"not a pdf")
