"""Business rules of the simulated target system (P2P), applied when a request is processed.

They are what makes the sandbox a test oracle: a matching order whose vendor was never
accepted fails, order lines posted before their header fail, unknown company codes fail.
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


class VendorView(View):
    vendorCode: str
    companies: list[CompanyRef]


class OrderView(View):
    externalCode: str
    orderNumber: str
    companyCode: str
    supplierCode: str


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

    def accept(self, api: EntityApi, body: dict[str, object]) -> None:
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
    if api.path == "matchingOrders":
        order = OrderView.model_validate(body)
        if not index.vendor_exists(order.supplierCode, order.companyCode):
            return [
                ItemError(
                    message=f"Vendor with code {order.supplierCode} does not exist "
                    f"for company {order.companyCode}"
                )
            ]
    if api.path == "matchingOrderLines":
        line = OrderLineView.model_validate(body)
        if line.orderExternalCode not in index.orders:
            return [
                ItemError(
                    message=f"Order header with externalCode {line.orderExternalCode} "
                    "does not exist; post the matching order before its lines"
                )
            ]
    return []
