"""Preflight of values: each check alone, then each bad value through the mapping, rejected
naming its Basware field (docs/basware-api.md §10.10)."""

from __future__ import annotations

from datetime import date

import pytest
from test_writer_mapping import invoice, supplier

from mlconnector.mapping import (
    Unmappable,
    invoice_from_supplier_invoice,
    vendor_from_supplier,
)
from mlconnector.value_checks import (
    bic_problem,
    due_date_problem,
    iban_problem,
    total_sign_problem,
    year_problem,
)


@pytest.mark.parametrize(
    "iban", ["NO9386011117947", "GB29 NWBK 6016 1331 9268 19", "fi2112345600000785"]
)
def test_a_valid_iban_passes(iban: str) -> None:
    assert iban_problem(iban) is None


def test_an_iban_with_wrong_check_digits_fails_mod_97() -> None:
    problem = iban_problem("NO9486011117947")
    assert problem is not None and "mod 97" in problem


def test_a_value_that_is_no_iban_at_all_fails_without_repeating_it() -> None:
    problem = iban_problem("NO00 INVALID IBAN !!")
    assert problem is not None and "not an IBAN" in problem
    assert "INVALID" not in problem


@pytest.mark.parametrize("bic", ["DABADKKK", "NDEAFIHH", "NDEAGB2LXXX"])
def test_a_valid_bic_passes(bic: str) -> None:
    assert bic_problem(bic) is None


@pytest.mark.parametrize("bic", ["DABA", "1234DKKK", "NDEAGB2LXX", "NDEA GB !!"])
def test_a_malformed_bic_fails(bic: str) -> None:
    assert bic_problem(bic) is not None


def test_years_outside_the_sane_range_fail() -> None:
    assert year_problem(date(2026, 10, 16)) is None
    assert year_problem(date(9999, 12, 31)) is not None
    assert year_problem(date(1, 1, 1)) is not None


def test_a_due_date_before_the_invoice_date_fails() -> None:
    assert due_date_problem(date(2026, 10, 16), date(2026, 11, 15)) is None
    assert due_date_problem(date(2026, 10, 16), date(2026, 10, 16)) is None
    assert due_date_problem(date(2026, 10, 16), date(2026, 10, 15)) is not None


def test_totals_are_never_negative_in_visma_whatever_the_type() -> None:
    assert total_sign_problem("Invoice", 812.5) is None
    assert total_sign_problem("CreditAdj", 812.5) is None
    assert total_sign_problem("Invoice", 0.0) is None
    bill = total_sign_problem("Invoice", -45125.0)
    assert bill is not None and "bill" in bill
    assert total_sign_problem("CreditAdj", -1.0) is not None


def refused_fields(error: pytest.ExceptionInfo[Unmappable]) -> dict[str, str]:
    assert {r.category for r in error.value.reasons} == {"Preflight"}
    return {r.field or "": r.message for r in error.value.reasons}


def test_a_negative_bill_total_is_rejected_naming_grosssum() -> None:
    with pytest.raises(Unmappable) as refused:
        invoice_from_supplier_invoice(invoice(amount=-45125.0), "BW00")
    assert set(refused_fields(refused)) == {"grossSum"}


def test_a_credit_note_reaches_basware_negative() -> None:
    embedded = invoice_from_supplier_invoice(invoice(documentType="CreditAdj"), "BW00").invoice
    assert (embedded.gross_sum, embedded.net_sum, embedded.tax_sum1) == (-812.5, -650.0, -162.5)
    assert [line.net_sum for line in embedded.invoice_lines] == [-250.0]
    bill = invoice_from_supplier_invoice(invoice(), "BW00").invoice
    assert bill.gross_sum == 812.5


def test_an_invoice_of_year_9999_due_in_year_1_is_rejected_naming_both_dates() -> None:
    with pytest.raises(Unmappable) as refused:
        invoice_from_supplier_invoice(
            invoice(date="9999-12-31T00:00:00", dueDate="0001-01-01T00:00:00"), "BW00"
        )
    fields = refused_fields(refused)
    assert set(fields) == {"invoiceDate", "dueDate"}
    assert "9999" in fields["invoiceDate"] and "before the invoice date" in fields["dueDate"]


def test_a_bad_iban_is_rejected_naming_its_field_and_not_its_value() -> None:
    details = [
        {
            "paymentMethodDetailDescription": "IBAN",
            "paymentMethodDetailValue": "NO00 INVALID IBAN !!",
        }
    ]
    with pytest.raises(Unmappable) as refused:
        vendor_from_supplier(supplier(supplierPaymentMethodDetails=details), "BW00")
    fields = refused_fields(refused)
    assert set(fields) == {"paymentMeans.0.financialAccounts.0.financialAccountIdentifiers.0.id"}
    assert "INVALID" not in str(refused.value.reasons)


def test_a_bad_bic_is_rejected_naming_the_financial_institution() -> None:
    details = [
        {"paymentMethodDetailDescription": "IBAN", "paymentMethodDetailValue": "NO9386011117947"},
        {"paymentMethodDetailDescription": "BIC/SWIFT", "paymentMethodDetailValue": "NOT A BIC"},
    ]
    with pytest.raises(Unmappable) as refused:
        vendor_from_supplier(supplier(supplierPaymentMethodDetails=details), "BW00")
    assert set(refused_fields(refused)) == {
        "paymentMeans.0.financialAccounts.0.financialInstitution.id"
    }


def test_bank_details_are_sent_with_the_schemes_basware_accepts() -> None:
    details = [
        {
            "paymentMethodDetailDescription": "Account number",
            "paymentMethodDetailValue": "15036021448",
            "paymentMethodDetailBankingDetailType": "BBAN",
        },
        {
            "paymentMethodDetailDescription": "Account number",
            "paymentMethodDetailValue": "1207 11 22334",
        },
        {
            "paymentMethodDetailDescription": "Bankgiro number",
            "paymentMethodDetailValue": "5051-6905",
            "paymentMethodDetailBankingDetailType": "BANKGIRO",
        },
        {
            "paymentMethodDetailDescription": "IBAN",
            "paymentMethodDetailValue": "fi21 1234 5600 0007 85",
        },
        {"paymentMethodDetailDescription": "BIC/SWIFT", "paymentMethodDetailValue": "NDEAFIHH"},
    ]
    vendor = vendor_from_supplier(supplier(supplierPaymentMethodDetails=details), "BW00").vendor
    (account,) = vendor.payload()["paymentMeans"][0]["financialAccounts"]
    assert [(i["schemeId"], i["id"]) for i in account["financialAccountIdentifiers"]] == [
        ("BBAN", "15036021448"),
        ("BBAN", "12071122334"),
        ("BBAN", "5051-6905"),
        ("IBAN", "FI2112345600000785"),
    ]
    assert account["financialInstitution"] == {
        "id": "NDEAFIHH",
        "name": "NDEAFIHH",
        "schemeId": "BIC",
    }
