"""A company's reference data: accounts, subaccounts, branch, currencies, VAT, dimensions.

Fixed per country and drawn from no random generator, so adding it changed none of the seeded
suppliers, orders or invoices. It matches what those name: accounts 2400, 4000 and the
service accounts, the subaccounts 0-00 to 2-10 (segments of the SUBACCOUNT dimension: a
department and a project), branch 1, VAT category 3 and the credit terms. Like a real chart
it also holds codes deactivated in Visma, which no seeded line names unless the seed asks
for records coded to them (SeedOptions.stale_coded): account 4090, department 9 and its
subaccount 9-00.
"""

from __future__ import annotations

from datetime import datetime

from visma_sandbox.config import CompanyInfo
from visma_sandbox.entities import EntityName
from visma_sandbox.schemas import (
    AccountType,
    Address,
    Branch,
    Country,
    CreditTerm,
    Currency,
    Dimension,
    Dto,
    GeneralLedgerAccount,
    GeneralLedgerSubaccount,
    IdDescription,
    Segment,
    SegmentValue,
    Subaccount,
    SubaccountSegment,
    VatCategory,
    VatCategoryLine,
    VatRateLine,
    VatZone,
)

# (accountCd, type, description, accountClass); the numbers seed.py uses among them.
_CHART: tuple[tuple[str, AccountType, str, str], ...] = (
    ("1500", "Asset", "Accounts receivable", "RECEIVABLE"),
    ("1920", "Asset", "Bank account", "CASH"),
    ("2400", "Liability", "Suppliers", "PAYABLE"),
    ("2700", "Liability", "Output VAT", "VAT"),
    ("2710", "Liability", "Input VAT", "VAT"),
    ("3000", "Income", "Sales", "SALES"),
    ("4000", "Expense", "Purchases", "COGS"),
    ("6100", "Expense", "Freight", "OPEX"),
    ("6300", "Expense", "Office rent", "OPEX"),
    ("6360", "Expense", "Cleaning services", "OPEX"),
    ("6540", "Expense", "Software subscription", "OPEX"),
    ("6700", "Expense", "Consulting services", "OPEX"),
    ("4090", "Expense", "Purchases, old chart", "COGS"),
)
# Deactivated in Visma: the account of the old chart, and a closed department.
CLOSED_ACCOUNT = "4090"
CLOSED_DEPARTMENT = "9"
_CLASS_DESCRIPTIONS = {
    "RECEIVABLE": "Receivables",
    "CASH": "Cash and bank",
    "PAYABLE": "Payables",
    "VAT": "VAT",
    "SALES": "Operating income",
    "COGS": "Cost of goods",
    "OPEX": "Operating expenses",
}
_CONTROL_MODULES = {"1500": "AR", "2400": "AP"}
_DEPARTMENTS = (
    ("0", "Administration"),
    ("1", "Sales"),
    ("2", "Purchasing"),
    (CLOSED_DEPARTMENT, "Closed department"),
)
_PROJECTS = (("00", "No project"), ("10", "Warehouse"))
# subaccountNumber, id, department, project
_SUBACCOUNTS = (
    ("0-00", 1, "0", "00"),
    ("1-00", 2, "1", "00"),
    ("2-00", 3, "2", "00"),
    ("2-10", 4, "2", "10"),
)
# The subaccount of the closed department: deactivated with it, named by no seeded line.
_CLOSED_SUBACCOUNT = ("9-00", 5, CLOSED_DEPARTMENT, "00")
# (termsId, description): the credit terms suppliers, orders and invoices name.
CREDIT_TERMS = (
    ("14", "14 days net"),
    ("20", "20 days net"),
    ("30", "30 days net"),
    ("45", "45 days net"),
)
_CURRENCIES = (
    ("DKK", "Danish krone", "kr."),
    ("EUR", "Euro", "€"),
    ("NOK", "Norwegian krone", "kr"),
    ("SEK", "Swedish krona", "kr"),
    ("USD", "US dollar", "$"),
)
_VAT_RATES = {"NO": 25.0, "SE": 25.0, "DK": 25.0, "FI": 25.5}
_CAPITALS = {
    "NO": ("Oslo", "0150"),
    "SE": ("Stockholm", "111 20"),
    "DK": ("København K", "1050"),
    "FI": ("Helsinki", "00100"),
}
_COUNTRY_NAMES = {"NO": "Norway", "SE": "Sweden", "DK": "Denmark", "FI": "Finland"}


def _accounts(info: CompanyInfo) -> list[Dto]:
    return [
        GeneralLedgerAccount(
            account_id=index,
            account_cd=number,
            account_class=account_class,
            type=kind,
            description=description,
            account_class_description=_CLASS_DESCRIPTIONS[account_class],
            use_default_sub=True,
            post_option="Summary",
            currency=info.base_currency if account_class == "CASH" else None,
            tax_category="3" if kind == "Expense" else None,
            cash_account=account_class == "CASH",
            public_code1=number,
            control_account_module=_CONTROL_MODULES.get(number),
            allow_manual_entry=number not in _CONTROL_MODULES,
            active=number != CLOSED_ACCOUNT,
        )
        for index, (number, kind, description, account_class) in enumerate(_CHART, start=1)
    ]


def _segments(department: str, project: str) -> list[SubaccountSegment]:
    departments, projects = dict(_DEPARTMENTS), dict(_PROJECTS)
    return [
        SubaccountSegment(
            segment_id=1,
            segment_description="Department",
            segment_value=department,
            segment_value_description=departments[department],
        ),
        SubaccountSegment(
            segment_id=2,
            segment_description="Project",
            segment_value=project,
            segment_value_description=projects[project],
        ),
    ]


def _description(department: str, project: str) -> str:
    return f"{dict(_DEPARTMENTS)[department]}, {dict(_PROJECTS)[project].lower()}"


def _subaccounts() -> list[Dto]:
    return [
        GeneralLedgerSubaccount(
            subaccount_number=number,
            subaccount_id=subaccount_id,
            description=_description(department, project),
            active=department != CLOSED_DEPARTMENT,
            segments=_segments(department, project),
        )
        for number, subaccount_id, department, project in (*_SUBACCOUNTS, _CLOSED_SUBACCOUNT)
    ]


def line_subaccount(position: int) -> Subaccount:
    """The subaccount a seeded line is coded to, chosen by its position (no random draw, so
    the seeded records stay what they were)."""
    number, subaccount_id, department, project = _SUBACCOUNTS[position % len(_SUBACCOUNTS)]
    return Subaccount(
        subaccount_number=number,
        subaccount_id=subaccount_id,
        description=_description(department, project),
        segments=_segments(department, project),
    )


def closed_subaccount() -> Subaccount:
    """The deactivated subaccount (closed department, no project) stale records are coded to."""
    number, subaccount_id, department, project = _CLOSED_SUBACCOUNT
    return Subaccount(
        subaccount_number=number,
        subaccount_id=subaccount_id,
        description=_description(department, project),
        segments=_segments(department, project),
    )


def _dimensions() -> list[Dto]:
    def values(segment_id: int, pairs: tuple[tuple[str, str], ...]) -> list[SegmentValue]:
        return [
            SegmentValue(
                internal_id=segment_id * 100 + index,
                segment_id=segment_id,
                value_id=value,
                description=description,
                public_id=value,
                active=value != CLOSED_DEPARTMENT or segment_id != 1,
            )
            for index, (value, description) in enumerate(pairs, start=1)
        ]

    return [
        Dimension(
            id="SUBACCOUNT",
            length=3,
            description="Subaccount",
            segments=[
                Segment(
                    internal_id=1,
                    segment_id=1,
                    description="Department",
                    length=1,
                    public_id="DEPT",
                    segment_values=values(1, _DEPARTMENTS),
                ),
                Segment(
                    internal_id=2,
                    segment_id=2,
                    description="Project",
                    length=2,
                    public_id="PROJ",
                    segment_values=values(2, _PROJECTS),
                ),
            ],
        )
    ]


def _branch(info: CompanyInfo) -> Branch:
    city, postal = _CAPITALS[info.country]
    return Branch(
        branch_id=1,
        number="1",
        name="Head office",
        organization_id=info.company_id,
        is_main_branch=True,
        main_address=Address(
            address_id=1,
            address_line1="Hovedgata 1",
            postal_code=postal,
            city=city,
            country=Country(id=info.country, name=_COUNTRY_NAMES[info.country]),
        ),
        currency=IdDescription(id=info.base_currency, description=info.base_currency),
        vat_zone=VatZone(id="01", description="Domestic", default_vat_category="3"),
        ledger=IdDescription(id="L", description="Actual ledger"),
    )


def _vat_categories(info: CompanyInfo) -> list[Dto]:
    rate = _VAT_RATES[info.country]
    return [
        VatCategory(
            vat_category_id="0",
            description="Exempt",
            vat_category_lines=[
                VatCategoryLine(
                    vat_id="0",
                    description="No VAT",
                    type="Vat",
                    calculate_on="ExtractFromItemAmount",
                    vat_rates=[VatRateLine(revision_id="1", vat_rate=0.0, group_type="Input")],
                )
            ],
        ),
        VatCategory(
            vat_category_id="3",
            description=f"Input VAT {rate:g} %",
            vat_category_lines=[
                VatCategoryLine(
                    vat_id="3",
                    description=f"Input VAT {rate:g} %",
                    type="Vat",
                    calculate_on="CalcOnItemAmount",
                    vat_rates=[
                        VatRateLine(
                            revision_id="1",
                            vat_rate=rate,
                            group_type="Input",
                            start_date=datetime(2024, 1, 1),
                        )
                    ],
                )
            ],
        ),
    ]


def demo_reference_records(info: CompanyInfo) -> dict[EntityName, list[Dto]]:
    """One company's reference data, ready for `CompanyState.load`."""
    return {
        EntityName.ACCOUNT: _accounts(info),
        EntityName.SUBACCOUNT: _subaccounts(),
        EntityName.BRANCH: [_branch(info)],
        EntityName.CURRENCY: [
            Currency(
                id=code,
                description=description,
                symbol=symbol,
                is_base_currency=code == info.base_currency,
            )
            for code, description, symbol in _CURRENCIES
        ],
        EntityName.VAT_CATEGORY: _vat_categories(info),
        EntityName.DIMENSION: _dimensions(),
        EntityName.CREDIT_TERM: [
            CreditTerm(
                terms_id=terms_id,
                description=description,
                due_day1=int(terms_id),
            )
            for terms_id, description in CREDIT_TERMS
        ],
    }
