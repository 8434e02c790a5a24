"""Reading an uploaded invoice PDF, as the sandbox's stand-in for Basware's data extraction.

Basware reads the PDF itself; the sandbox cannot, so it reads a JSON file embedded in the PDF
(the way Factur-X and ZUGFeRD embed their XML). The JSON uses AccountingDocumentEntity field
names (companyCode, supplierCode, invoiceNumber, invoiceDate, ..., invoiceLines[]).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, time

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from basware_sandbox.records import CodingRow, InvoiceLine

EMBEDDED_INVOICE_FILENAME = "basware-invoice.json"


class EmbeddedInvoice(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

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
    coding_rows: list[CodingRow] = []


def midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class UnreadableInvoice(Exception):
    """The upload holds no invoice the sandbox can read; the message says why."""


def read_embedded_invoice(pdf: bytes) -> EmbeddedInvoice:
    try:
        attachments = PdfReader(io.BytesIO(pdf)).attachments
    except (PyPdfError, ValueError, KeyError) as exc:
        raise UnreadableInvoice(f"not a readable PDF: {exc}") from exc
    contents = attachments.get(EMBEDDED_INVOICE_FILENAME)
    if not contents:
        raise UnreadableInvoice(f"no embedded {EMBEDDED_INVOICE_FILENAME}")
    try:
        return EmbeddedInvoice.model_validate(json.loads(contents[0]))
    except (ValueError, ValidationError) as exc:
        raise UnreadableInvoice(f"embedded invoice is not valid: {exc}") from exc
