"""One tenant's Basware calls as the executor makes them (ports.BaswareCalls): the client's
typed calls, each through the tenant's backoff (backoff.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from urllib.parse import urlsplit

from basware_writer.backoff import BaswareBackoff
from basware_writer.domain import Stage
from basware_writer.planner import STAGE_OF_MASTER, UpsertBatch
from basware_writer.ports import UploadUncertain
from mlconnector.basware.client import BaswareClient
from mlconnector.basware.errors import BaswareError, BaswareNotFound, BaswareUnavailable
from mlconnector.basware.models import (
    AcceptedRequest,
    BaswareVendor,
    InvoiceStatus,
    MasterDataRecord,
    MatchingOrder,
    MatchingOrderLine,
    RequestStatus,
    UploadResponse,
)
from mlconnector.retry import RetriesExhausted

log = logging.getLogger(__name__)

UPSERT_ROUTES = {
    Stage.PAYMENT_TERM: "POST /v1/paymentTerms",
    Stage.TAX_CODE: "POST /v1/taxCodes",
    Stage.ACCOUNT: "POST /v1/accounts",
    Stage.COST_CENTER: "POST /v1/costCenters",
    Stage.PROJECT: "POST /v2/projects",
    Stage.LIST: "POST /v1/lists/{listKey}",
    Stage.VENDOR: "POST /v1/vendors",
    Stage.ORDER: "POST /v1/matchingOrders",
    Stage.LINES: "POST /v1/matchingOrderLines",
}


class TenantBasware:
    def __init__(self, tenant: str, client: BaswareClient, backoff: BaswareBackoff) -> None:
        self.tenant = tenant
        self.client = client
        self._backoff = backoff

    async def region(self) -> str | None:
        try:
            return (await self.client.region()).value
        except BaswareError:
            return None

    async def upsert(self, stage: Stage, batch: UpsertBatch) -> tuple[list[AcceptedRequest], int]:
        return await self._backoff.call(UPSERT_ROUTES[stage], lambda: self._post(stage, batch))

    async def _post(self, stage: Stage, batch: UpsertBatch) -> list[AcceptedRequest]:
        if stage in STAGE_OF_MASTER:
            master = [r for r in batch.records if isinstance(r, MasterDataRecord)]
            return await self.client.upsert_master_data(master)
        if stage is Stage.VENDOR:
            vendors = [r for r in batch.records if isinstance(r, BaswareVendor)]
            return await self.client.upsert_vendors(vendors)
        if stage is Stage.ORDER:
            orders = [r for r in batch.records if isinstance(r, MatchingOrder)]
            return await self.client.upsert_matching_orders(orders)
        lines = [r for r in batch.records if isinstance(r, MatchingOrderLine)]
        return await self.client.upsert_matching_order_lines(lines)

    async def request_status(self, request_id: str) -> RequestStatus | None:
        try:
            status, _ = await self._backoff.call(
                "GET /v1/requestStatus", lambda: self.client.get_request_status(request_id)
            )
        except BaswareNotFound:
            return None  # not visible yet
        except (RetriesExhausted, BaswareError) as exc:
            log.warning("%s: requestStatus %s not read now: %s", self.tenant, request_id, exc)
            return None
        return status

    async def upload_pdf(
        self, pdf: bytes, inbox: str, putting: Callable[[], Awaitable[None]]
    ) -> tuple[str, int]:
        upload, attempts = await self._backoff.call(
            "POST /v2/smartpdf/invoiceUpload",
            lambda: self.client.request_invoice_upload(
                receiving_email=inbox, notification_email=inbox
            ),
        )
        # Storage elsewhere (S3) is not Basware's API: its PUT takes no budget, only a slot.
        # A storage URL on one of Basware's own hosts shares their budget and Retry-After.
        await putting()
        _, put_attempts = await self._backoff.call(
            "PUT invoice PDF",
            lambda: self._put(upload, pdf),
            budgeted=self._on_basware_host(upload),
        )
        return upload.bum_id, attempts + put_attempts - 1

    def _on_basware_host(self, upload: UploadResponse) -> bool:
        target = urlsplit(upload.upload_url.get_secret_value()).netloc
        return any(urlsplit(h.base_url).netloc == target for h in self.client.hosts.hosts.values())

    async def _put(self, upload: UploadResponse, pdf: bytes) -> None:
        try:
            await self.client.put_invoice_pdf(upload, pdf)
        except BaswareUnavailable as exc:
            if exc.status is None:
                raise UploadUncertain(str(exc)) from exc
            raise

    async def find_invoice(
        self, company_code: str, invoice_number: str, invoice_date: date
    ) -> list[InvoiceStatus]:
        found, _ = await self._backoff.call(
            "GET /v1/accountingDocuments/status",
            lambda: self.client.get_invoice_status(company_code, invoice_number, invoice_date),
        )
        return found
