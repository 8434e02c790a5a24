"""Checks of values, not shapes: what a Basware field may hold for the record to make sense.

Pure functions. Each answers the problem with a value in words, or None when the value is
fine; the words never repeat the value (a bank account is nobody's business in a log). The
mapping (mapping.py) turns each problem into a `Preflight` reason naming Basware's field
(docs/basware-p2p.md §10.11).
"""

from __future__ import annotations

import re
from datetime import date

# Visma's AP document types whose amounts are a credit (docs/visma-net.md §7.4). Visma keeps
# every AP document's amounts positive and lets the type carry the sign; Basware's credit
# notes carry negative sums.
CREDIT_NOTE_TYPES = frozenset({"CreditAdj"})
# Invoice and due dates outside these years are typing errors, not invoices.
EARLIEST_YEAR = 2000
LATEST_YEAR = 2099

_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
# ISO 9362: bank (4 letters), country (2 letters), location (2), optional branch (3).
_BIC = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


def compact_account(value: str) -> str:
    """An account number as it is compared and sent: without spaces, in capitals."""
    return "".join(value.split()).upper()


def iban_problem(value: str) -> str | None:
    """ISO 13616: country, two check digits, the domestic account; mod 97 of the
    rearranged number is 1."""
    iban = compact_account(value)
    if not _IBAN.fullmatch(iban):
        return (
            "is not an IBAN: it must be a country code, two check digits and 11 to 30 "
            "letters or digits"
        )
    rearranged = iban[4:] + iban[:4]
    if int("".join(str(int(c, 36)) for c in rearranged)) % 97 != 1:
        return "is not a valid IBAN: its check digits do not match (mod 97)"
    return None


def bic_problem(value: str) -> str | None:
    if not _BIC.fullmatch(compact_account(value)):
        return (
            "is not a BIC: it must be 8 or 11 letters and digits (bank, country, location, "
            "optional branch)"
        )
    return None


def year_problem(day: date) -> str | None:
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        return f"year {day.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}"
    return None


def due_date_problem(invoice_date: date, due_date: date) -> str | None:
    if due_date < invoice_date:
        return "the due date is before the invoice date"
    return None


def total_sign_problem(document_type: str, total: float | None) -> str | None:
    """A Visma AP total is never negative: the document type says whether it is a credit."""
    if total is None or total >= 0:
        return None
    if document_type in CREDIT_NOTE_TYPES:
        return (
            f"is negative on a {document_type}: Visma keeps a credit adjustment's amounts "
            "positive, and Basware receives them negated"
        )
    return f"is negative on a {document_type}, which is a bill: a credit is a CreditAdj document"


def signed(document_type: str, amount: float | None) -> float | None:
    """An amount as Basware receives it: negative on a credit note."""
    if amount is None or document_type not in CREDIT_NOTE_TYPES:
        return amount
    return -amount
