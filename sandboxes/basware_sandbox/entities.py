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

    @property
    def scope_name(self) -> str:
        """The scopes' prefix: the path's first segment (lists.write for every list)."""
        return self.path.split("/")[0]


# The generic lists coding dimensions are checked against (`/v1/lists/{listKey}`, the
# ACC_LIST keys of its path parameter); the file's INV_LIST and CUST_RESOLVER lists are not
# served.
LIST_KEYS = tuple(f"ACC_LIST_{n}" for n in range(1, 36))


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
        *(
            EntityApi(f"lists/{key}", "GenericListEntity", "listItems", "GenericList", 500, 500)
            for key in LIST_KEYS
        ),
    )
}


def api_of_path(path: str) -> EntityApi:
    """The API a request path (/v1/<api>/...) names; a list's API includes its key."""
    parts = path.split("/")
    return ENTITY_APIS["/".join(parts[2:4]) if parts[2] == "lists" else parts[2]]
