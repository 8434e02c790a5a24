"""A real, readable PDF for a supplier invoice attachment (what Basware's SmartPDF receives)."""

from __future__ import annotations

from fpdf import FPDF

from visma_sandbox.schemas import SupplierInvoice


def invoice_pdf(invoice: SupplierInvoice, buyer_name: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creator("visma-sandbox")
    pdf.set_title(f"Invoice {invoice.supplier_reference or invoice.reference_number}")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 10, invoice.supplier.name or invoice.supplier.number, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    currency = invoice.currency_id or ""
    header = [
        f"{'Credit note' if invoice.document_type == 'CreditAdj' else 'Invoice'} "
        f"{invoice.supplier_reference or invoice.reference_number}",
        f"Buyer: {buyer_name}",
        f"Invoice date: {invoice.date:%Y-%m-%d}" if invoice.date else "",
        f"Due date: {invoice.due_date:%Y-%m-%d}" if invoice.due_date else "",
        f"Payment reference: {invoice.payment_ref_no}" if invoice.payment_ref_no else "",
    ]
    for text in filter(None, header):
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", style="B", size=10)
    for title, width in (("Description", 90), ("Qty", 20), ("Unit cost", 35), ("Amount", 35)):
        pdf.cell(width, 7, title, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=10)
    for line in invoice.invoice_lines:
        pdf.cell(90, 6, (line.transaction_description or "")[:48])
        pdf.cell(20, 6, f"{line.quantity:g}")
        pdf.cell(35, 6, f"{line.unit_cost:,.2f}")
        pdf.cell(35, 6, f"{line.cost:,.2f}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for label, value in (
        ("Net", invoice.detail_total),
        ("VAT", invoice.vat_total),
        ("Total", invoice.amount),
    ):
        pdf.cell(145, 6, f"{label} {currency}", align="R")
        pdf.cell(35, 6, f"{value:,.2f}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
