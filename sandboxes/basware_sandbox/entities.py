"""The inbound P2P APIs the sandbox serves, described once and served by one generic handler."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntityApi:
    path: str  # /v1/<path>
    schema: str  # components/schemas name in the P2P file
    wrapper: str  # property holding the array in GET list answers
    entity_type: str  # requestStatus entityType
    batch_limit: int
    page_size: int  # default and maximum pageSize of GET list
    # Query parameter GET list requires and filters on (matchingOrderLines: orderExternalCode).
    parent_filter: str | None = None
    version: str = "v1"  # the route's version segment: /v2/projects

    @property
    def entity_version(self) -> str:
        return f"{self.entity_type}{self.version.upper()}"

    @property
    def route(self) -> str:
        return f"/{self.version}/{self.path}"


ENTITY_APIS: dict[str, EntityApi] = {
    api.path: api
    for api in (
        EntityApi("vendors", "VendorEntity", "vendorEntities", "Vendor", 200, 100),
        EntityApi("matchingOrders", "OrderEntity", "matchingOrders", "MatchingOrder", 500, 500),
        EntityApi(
            "matchingOrderLines",
            "OrderLineEntity",
            "matchingOrderLines",
            "MatchingOrderLine",
            100,
            100,
            parent_filter="orderExternalCode",
        ),
        EntityApi("accounts", "AccountEntity", "accounts", "Account", 500, 500),
        EntityApi("costCenters", "CostCenterEntity", "costCenters", "CostCenter", 500, 500),
        EntityApi("taxCodes", "TaxCodeEntity", "taxCodes", "TaxCode", 500, 500),
        EntityApi("paymentTerms", "PaymentTermEntity", "paymentTerms", "PaymentTerm", 500, 500),
        EntityApi("projects", "ProjectEntityV2", "projects", "Project", 500, 500, version="v2"),
        EntityApi("exchangeRates", "ExchangeRateEntity", "exchangeRates", "ExchangeRate", 500, 500),
    )
}
