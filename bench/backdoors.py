"""The sandboxes' back doors, as the benchmark uses them: counters, latency, record changes.

The request counters are the source of every "HTTP requests" figure: the sandboxes count
what they answered, so nothing is estimated on the client side.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import BaseModel, Field

from visma_sandbox.requestlog import LoggedRequest

# The back door's names for the entities (the lower-cased Visma list paths).
VISMA_SUPPLIER = "supplier"
VISMA_PURCHASE_ORDER = "purchaseorder"
VISMA_SUPPLIER_INVOICE = "supplierinvoice"
# Receipts are not an entity of the pipeline, but the reader polls them with the orders.
VISMA_PURCHASE_RECEIPT = "purchasereceipt"
VISMA_ENTITIES = (VISMA_SUPPLIER, VISMA_PURCHASE_ORDER, VISMA_SUPPLIER_INVOICE)


class VismaCompany(BaseModel):
    company_id: str = Field(alias="companyId")
    tenant_id: str = Field(alias="tenantId")
    record_counts: dict[str, int] = Field(alias="recordCounts")


class _Backdoor:
    def __init__(self, base_url: str) -> None:
        self._http = httpx.AsyncClient(base_url=f"{base_url}/_sandbox", timeout=60.0)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


class VismaBackdoor(_Backdoor):
    async def companies(self) -> list[VismaCompany]:
        body = await self._json("GET", "/companies")
        return [VismaCompany.model_validate(c) for c in body["companies"]]

    async def counters(self) -> dict[str, int]:
        """ERP API and token calls answered so far, by "<company id> <route>"."""
        counters: dict[str, int] = await self._json("GET", "/counters")
        return counters

    async def api_requests(self) -> int:
        return sum((await self.counters()).values())

    async def set_latency(self, ms: float) -> None:
        await self._json("PATCH", "/settings", {"latency_ms": ms})

    async def set_quota(self, calls_per_hour: int) -> None:
        await self._json("PATCH", "/settings", {"rate_limit": calls_per_hour})

    async def set_quota_window(self, calls: int, window_seconds: float) -> None:
        """A quota of `calls` per window of `window_seconds` (a compressed hour)."""
        body = {"rate_limit": calls, "rate_limit_window_seconds": window_seconds}
        await self._json("PATCH", "/settings", body)

    async def requests(self, company_id: str, since: int = 0) -> list[LoggedRequest]:
        """The API calls of one company the sandbox logged, oldest first."""
        body = await self._http.get("/requests", params={"companyId": company_id, "since": since})
        body.raise_for_status()
        return [LoggedRequest.model_validate(e) for e in body.json()]

    async def set_webhooks(self, company_id: str, *, enabled: bool) -> None:
        await self._json("PUT", f"/companies/{company_id}/webhooks", {"enabled": enabled})

    async def touch(
        self, company_id: str, entity: str, at: datetime, keys: list[str] | None = None
    ) -> None:
        """Stamps the records (all when `keys` is None) with `at`: content unchanged, no
        webhook."""
        await self._json(
            "POST",
            f"/companies/{company_id}/touch/{entity}",
            {"keys": keys, "lastModifiedDateTime": at.isoformat()},
        )

    async def exists(self, company_id: str, entity: str, key: str) -> bool:
        response = await self._http.get(f"/companies/{company_id}/records/{entity}/{key}")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    async def update(
        self, company_id: str, entity: str, key: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Changes fields of a record as a user would in the ERP (stamped, webhook sent)."""
        record: dict[str, Any] = await self._json(
            "PATCH", f"/companies/{company_id}/records/{entity}/{key}", changes
        )
        return record


class BaswareBackdoor(_Backdoor):
    async def counters(self) -> dict[str, int]:
        """Requests answered so far, by "<method> <route> <status>", and their "total"."""
        counters: dict[str, int] = await self._json("GET", "/counters")
        return counters

    async def api_requests(self) -> int:
        return (await self.counters()).get("total", 0)

    async def set_latency(self, ms: float) -> None:
        await self._json("PUT", "/latency", {"ms": int(ms)})

    async def reset(self) -> None:
        """Forgets every record, request, counter and the latency (configured clients stay)."""
        await self._json("POST", "/reset")
