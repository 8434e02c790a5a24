"""Business rules of the simulated target system (P2P), applied when a request is processed.

They are what makes the sandbox a test oracle: a matching order whose vendor was never
accepted fails, order lines posted before their header fail, unknown company codes fail, and
a vendor, order or order line naming a payment term, tax code, account, cost center or
project that P2P does not have for its company (or has as inactive) fails: master data must
be there first, as Basware's paymentTerms route says of vendors (docs/basware-p2p.md §6.6).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from basware_sandbox.entities import EntityApi
from basware_sandbox.records import ItemError

UNKNOWN_COMPANY = "Record skipped due to wrong or missing CompanyCode"


class View(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CompanyRef(View):
    companyCode: str


class CompaniesView(View):
    companyCode: str | None = None
    companies: list[CompanyRef] | None = None

    def codes(self) -> list[str]:
        listed = [c.companyCode for c in self.companies or []]
        return listed + ([self.companyCode] if self.companyCode else [])


class PaymentTermRef(View):
    paymentTermCode: str | None = None


class VendorView(View):
    vendorCode: str
    companies: list[CompanyRef]
    paymentTerms: PaymentTermRef | None = None


class ActiveCompany(View):
    companyCode: str
    active: bool = True


class MasterDataView(View):
    companies: list[ActiveCompany] = []


# Master-data APIs: the field holding the code, and how messages name the code.
MASTER_CODE_FIELDS: dict[str, tuple[str, str]] = {
    "paymentTerms": ("paymentTermCode", "PaymentTermCode"),
    "taxCodes": ("taxCode", "TaxCode"),
    "accounts": ("accountCode", "AccountCode"),
    "costCenters": ("costCenterCode", "CostCenterCode"),
    "projects": ("projectCode", "ProjectCode"),
    **{f"lists/ACC_LIST_{n}": ("text_1", f"DimCode{n}") for n in range(1, 11)},
}


class CodingView(View):
    accountCode: str | None = None
    costCenterCode: str | None = None
    projectCode: str | None = None
    taxCode: str | None = None
    dimCode1: str | None = None
    dimCode2: str | None = None
    dimCode3: str | None = None
    dimCode4: str | None = None
    dimCode5: str | None = None
    dimCode6: str | None = None
    dimCode7: str | None = None
    dimCode8: str | None = None
    dimCode9: str | None = None
    dimCode10: str | None = None

    def dim_codes(self) -> list[tuple[str, str | None]]:
        """(list API, code) of each coding dimension: dimCode n is checked against
        ACC_LIST_n (docs/basware-p2p.md §10.10)."""
        return [(f"lists/ACC_LIST_{n}", getattr(self, f"dimCode{n}")) for n in range(1, 11)]


class OrderView(View):
    externalCode: str
    orderNumber: str
    companyCode: str
    supplierCode: str
    paymentTermCode: str | None = None


class GoodsReceiptView(View):
    quantity: float
    isDeleted: bool | None = None


class OrderLineView(View):
    externalCode: str
    orderExternalCode: str
    lineNumber: str
    quantity: float
    netPrice: float | None = None
    grossPrice: float | None = None
    isReceiptRequired: bool | None = None
    goodsReceipts: list[GoodsReceiptView] | None = None
    taxCode: str | None = None
    orderLineCoding: list[CodingView] | None = None

    @property
    def received_quantity(self) -> float:
        # Reversals are negative receipts, so a plain sum nets them out.
        return sum(gr.quantity for gr in self.goodsReceipts or [] if not gr.isDeleted)


class TargetIndex:
    """Lookups over the records P2P has accepted, kept up to date as records are accepted."""

    def __init__(self) -> None:
        self.vendor_companies: dict[str, dict[str, set[str]]] = {}
        self.orders: dict[str, OrderView] = {}
        self.orders_by_number: dict[tuple[str, str], str] = {}
        self.lines: dict[str, dict[str, OrderLineView]] = {}
        # (api, code) -> {company: active}, over every accepted version of the code.
        self.master: dict[tuple[str, str], dict[str, bool]] = {}

    def accept(self, api: EntityApi, body: dict[str, object]) -> None:
        # A list item's code column is optional: one without it names no code.
        if (
            api.path in MASTER_CODE_FIELDS
            and (code := body.get(MASTER_CODE_FIELDS[api.path][0])) is not None
        ):
            view = MasterDataView.model_validate(body)
            self.master[(api.path, str(code))] = {c.companyCode: c.active for c in view.companies}
        if api.path == "vendors":
            vendor = VendorView.model_validate(body)
            by_code = self.vendor_companies.setdefault(vendor.vendorCode, {})
            by_code[str(body["externalCode"])] = {c.companyCode for c in vendor.companies}
        elif api.path == "matchingOrders":
            order = OrderView.model_validate(body)
            self.orders[order.externalCode] = order
            self.orders_by_number[(order.companyCode, order.orderNumber)] = order.externalCode
        elif api.path == "matchingOrderLines":
            line = OrderLineView.model_validate(body)
            self.lines.setdefault(line.orderExternalCode, {})[line.lineNumber] = line

    def code_problem(self, api: str, code: str, company_code: str) -> ItemError | None:
        """Why a record may not name this code for this company; None when it may."""
        name = MASTER_CODE_FIELDS[api][1]
        active = self.master.get((api, code), {}).get(company_code)
        if active is None:
            return ItemError(
                message=f"Record skipped due to unknown {name} {code} for company {company_code}"
            )
        if not active:
            return ItemError(
                message=f"Record skipped due to inactive {name} {code} for company {company_code}"
            )
        return None

    def vendor_exists(self, vendor_code: str, company_code: str) -> bool:
        return any(company_code in c for c in self.vendor_companies.get(vendor_code, {}).values())

    def order_line(
        self, company_code: str, order_number: str, line_number: str
    ) -> OrderLineView | None:
        order_code = self.orders_by_number.get((company_code, order_number))
        if order_code is None:
            return None
        return self.lines.get(order_code, {}).get(line_number)


def item_errors(
    api: EntityApi, body: dict[str, object], company_codes: set[str], index: TargetIndex
) -> list[ItemError]:
    companies = CompaniesView.model_validate(body).codes()
    if any(code not in company_codes for code in companies):
        return [ItemError(message=UNKNOWN_COMPANY)]
    if api.path == "vendors":
        vendor = VendorView.model_validate(body)
        term = vendor.paymentTerms.paymentTermCode if vendor.paymentTerms else None
        return _code_errors(index, [("paymentTerms", term)], companies)
    if api.path == "matchingOrders":
        order = OrderView.model_validate(body)
        if not index.vendor_exists(order.supplierCode, order.companyCode):
            return [
                ItemError(
                    message=f"Vendor with code {order.supplierCode} does not exist "
                    f"for company {order.companyCode}"
                )
            ]
        return _code_errors(index, [("paymentTerms", order.paymentTermCode)], [order.companyCode])
    if api.path == "matchingOrderLines":
        line = OrderLineView.model_validate(body)
        header = index.orders.get(line.orderExternalCode)
        if header is None:
            return [
                ItemError(
                    message=f"Order header with externalCode {line.orderExternalCode} "
                    "does not exist; post the matching order before its lines"
                )
            ]
        named: list[tuple[str, str | None]] = [("taxCodes", line.taxCode)]
        for coding in line.orderLineCoding or []:
            named += [
                ("accounts", coding.accountCode),
                ("costCenters", coding.costCenterCode),
                ("projects", coding.projectCode),
                ("taxCodes", coding.taxCode),
                *coding.dim_codes(),
            ]
        return _code_errors(index, named, [header.companyCode])
    return []


def _code_errors(
    index: TargetIndex, named: list[tuple[str, str | None]], companies: list[str]
) -> list[ItemError]:
    """One error per code (each named once) the record's companies may not use."""
    errors: list[ItemError] = []
    for api, code in dict.fromkeys(named):
        if not code:
            continue
        for company in companies:
            if (problem := index.code_problem(api, code, company)) is not None:
                errors.append(problem)
    return errors
