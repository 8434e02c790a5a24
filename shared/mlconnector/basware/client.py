"""The typed async client of Basware's P2P, SmartPDF and push-notification APIs.

It fetches and caches one token per credential and scope set (refetched before expiry and
once on a 401), finds the credential's region when none is configured, splits bulk upserts
to Basware's limits, follows 302s to pre-signed storage URLs without the bearer token, and
turns failures into typed errors. It never retries a 429 or a 5xx itself: the caller owns
retries and the rate budget they share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel

from mlconnector.basware.auth import BaswareCredentials, IssuedToken, fetch_token, probe_regions
from mlconnector.basware.batching import (
    MASTER_DATA_BATCH_LIMIT,
    MATCHING_ORDER_BATCH_LIMIT,
    MATCHING_ORDER_LINE_BATCH_LIMIT,
    MAX_REQUEST_BYTES,
    VENDOR_BATCH_LIMIT,
    encode,
    split_batches,
)
from mlconnector.basware.errors import (
    BaswareAuthError,
    BaswareError,
    BaswareNotFound,
    BaswarePending,
    error_for,
    transport_error,
)
from mlconnector.basware.models import (
    AcceptedRequest,
    AccountingDocument,
    AccountingDocumentResponse,
    BaswareAccount,
    BaswareCostCenter,
    BaswareModel,
    BaswarePaymentTerm,
    BaswareProject,
    BaswareTaxCode,
    BaswareVendor,
    GenericListItem,
    InvoiceStatus,
    InvoiceUpload,
    MasterDataRecord,
    MatchingOrder,
    MatchingOrderLine,
    MatchingOrderList,
    PaymentResponse,
    PrebookResponse,
    RequestStatus,
    RequestStatusResponse,
    Subscription,
    SubscriptionsResponse,
    TransferResponse,
    UploadResponse,
    VendorList,
)
from mlconnector.basware.regions import BaswareHosts, BaswareRegion
from mlconnector.tokens import AccessToken, BearerAuth, TokenCache

REQUEST_ID_HEADER = "x-amzn-RequestId"
# The largest pageSize of each list (docs/basware-p2p.md §5.3).
VENDOR_PAGE_LIMIT = 100
MATCHING_ORDER_PAGE_LIMIT = 500
ACCOUNTING_DOCUMENT_PAGE_LIMIT = 100
CONTINUATION_HEADER = "x-amz-meta-continuationtoken"

# Everything ml-connector does with Basware, asked for in one token (tokens are scope-bound).
DEFAULT_SCOPES: tuple[str, ...] = (
    "vendors.read",
    "vendors.write",
    "matchingOrders.read",
    "matchingOrders.write",
    "matchingOrderLines.read",
    "matchingOrderLines.write",
    "paymentTerms.write",
    "taxCodes.write",
    "accounts.write",
    "costCenters.write",
    "projects.write",
    "lists.write",
    "requestStatus.read",
    "requestStatus.write",
    "accountingDocuments.read",
    "accountingDocuments.write",
    "subscriptions.read",
    "subscriptions.write",
    "importDocuments.write",
)


# (version, route, requestStatus entityType) per master-data kind (docs/basware-p2p.md §6.6).
MASTER_DATA_APIS: dict[type[BaswareModel], tuple[str, str, str]] = {
    BaswarePaymentTerm: ("v1", "paymentTerms", "PaymentTerm"),
    BaswareTaxCode: ("v1", "taxCodes", "TaxCode"),
    BaswareAccount: ("v1", "accounts", "Account"),
    BaswareCostCenter: ("v1", "costCenters", "CostCenter"),
    BaswareProject: ("v2", "projects", "Project"),
    GenericListItem: ("v1", "lists", "GenericList"),
}


class BaswarePing(BaseModel):
    """What `ping` found out: where the credential lives and that a read works."""

    region: BaswareRegion
    issuer: str
    tenant: str | None
    scopes: list[str]
    clock_skew_seconds: float | None


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class BaswareClient:
    def __init__(
        self,
        credentials: BaswareCredentials,
        hosts: BaswareHosts | None = None,
        *,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.credentials = credentials
        self.hosts = hosts or BaswareHosts.public()
        self.scopes = tuple(scopes)
        self._http = http or httpx.AsyncClient(timeout=30.0, transport=transport)
        self._owns_http = http is None
        self._max_bytes = max_request_bytes
        self._region: BaswareRegion | None = credentials.region
        self._region_lock = asyncio.Lock()
        self._issued: IssuedToken | None = None
        self._seed: IssuedToken | None = None
        self.tokens = TokenCache(self._fetch_token)
        self._auth = BearerAuth(self.tokens)

    async def __aenter__(self) -> BaswareClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- region and token ---

    async def region(self) -> BaswareRegion:
        """The configured region, or the one detected from the credentials (then cached)."""
        if self._region is None:
            async with self._region_lock:
                if self._region is None:
                    probe = await probe_regions(
                        self._http, self.credentials, self.hosts, self.scopes
                    )
                    # The detection already produced a usable token: the cache starts with it.
                    self._seed = probe.issued
                    self._region = probe.region
        return self._region

    async def _fetch_token(self) -> AccessToken:
        region = await self.region()
        issued, self._seed = self._seed, None
        if issued is None:
            issued = await fetch_token(
                self._http, self.hosts.host(region), self.credentials, self.scopes
            )
        self._issued = issued
        return issued.token

    async def _base_url(self) -> str:
        return self.hosts.host(await self.region()).base_url

    # --- plumbing ---

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One authenticated call; answers outside `ok` become typed errors."""
        call = f"{method} {path}"
        url = f"{await self._base_url()}{path}"
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, url, content=body, params=params, headers=sent, auth=self._auth
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, call) from None
        if response.status_code not in ok:
            raise error_for(response, call)
        return response

    async def _unauthenticated(
        self, method: str, url: str, call: str, **kwargs: Any
    ) -> httpx.Response:
        """A call to a pre-signed storage URL: it must carry no Authorization header at all."""
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, call) from None
        if response.status_code != 200:
            raise error_for(response, call)
        return response

    async def _get_through_redirect(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[bytes, str | None] | None:
        """The body and continuation token of a GET that answers 302 to storage, or None for
        Basware's 404 "no records". The token may come on either answer; the storage one wins."""
        first = await self._call("GET", path, params=params, headers=headers, ok=(200, 302, 404))
        if first.status_code == 404:
            return None
        if first.status_code == 200:
            return first.content, first.headers.get(CONTINUATION_HEADER)
        target = urljoin(str(first.url), first.headers["location"])
        final = await self._unauthenticated("GET", target, f"GET {path} (redirected)")
        token = final.headers.get(CONTINUATION_HEADER) or first.headers.get(CONTINUATION_HEADER)
        return final.content, token

    def _request_id(self, response: httpx.Response, call: str) -> str:
        request_id: str | None = response.headers.get(REQUEST_ID_HEADER)
        if not request_id:
            raise BaswareError(f"Basware {call}: answer carries no {REQUEST_ID_HEADER}")
        return request_id

    # --- inbound records ---

    async def _upsert(
        self,
        api: str,
        entity_type: str,
        records: Sequence[BaswareModel],
        max_records: int,
        *,
        version: str = "v1",
    ) -> list[AcceptedRequest]:
        accepted: list[AcceptedRequest] = []
        batches = split_batches(
            [r.payload() for r in records], max_records=max_records, max_bytes=self._max_bytes
        )
        path = f"/{version}/{api}"
        for batch in batches:
            try:
                response = await self._call("POST", path, body=encode(batch))
            except BaswareError as exc:
                exc.accepted = list(accepted)
                raise
            accepted.append(
                AcceptedRequest(
                    request_id=self._request_id(response, f"POST {path}"),
                    entity_type=entity_type,
                    external_codes=[str(r["externalCode"]) for r in batch],
                )
            )
        return accepted

    async def upsert_vendors(self, vendors: Sequence[BaswareVendor]) -> list[AcceptedRequest]:
        """POSTs vendors in batches of at most 200 and 6 MB, in order; one AcceptedRequest each."""
        return await self._upsert("vendors", "Vendor", vendors, VENDOR_BATCH_LIMIT)

    async def upsert_matching_orders(
        self, orders: Sequence[MatchingOrder]
    ) -> list[AcceptedRequest]:
        return await self._upsert(
            "matchingOrders", "MatchingOrder", orders, MATCHING_ORDER_BATCH_LIMIT
        )

    async def upsert_matching_order_lines(
        self, lines: Sequence[MatchingOrderLine]
    ) -> list[AcceptedRequest]:
        return await self._upsert(
            "matchingOrderLines", "MatchingOrderLine", lines, MATCHING_ORDER_LINE_BATCH_LIMIT
        )

    async def upsert_master_data(
        self, records: Sequence[MasterDataRecord]
    ) -> list[AcceptedRequest]:
        """POSTs records of one master-data kind to its route, in batches of at most 500."""
        if not records:
            return []
        version, api, entity_type = MASTER_DATA_APIS[type(records[0])]
        if any(type(r) is not type(records[0]) for r in records):
            raise TypeError("one master-data kind per upsert")
        if isinstance(records[0], GenericListItem):
            keys = {r.list_key for r in records if isinstance(r, GenericListItem)}
            if len(keys) != 1:
                raise TypeError("one generic list per upsert")
            api = f"{api}/{keys.pop()}"
        return await self._upsert(
            api, entity_type, records, MASTER_DATA_BATCH_LIMIT, version=version
        )

    async def _list_pages(self, path: str, params: dict[str, str]) -> AsyncIterator[bytes]:
        """The body of each page of a P2P list (404: no records), following the continuation
        token with the same query (docs/basware-p2p.md §5.3); a page is read when asked for."""
        token: str | None = None
        while True:
            headers = {CONTINUATION_HEADER: token} if token else None
            response = await self._call("GET", path, params=params, headers=headers, ok=(200, 404))
            if response.status_code == 404:
                return
            yield response.content
            token = response.headers.get(CONTINUATION_HEADER)
            if not token:
                return

    async def iter_vendor_pages(
        self, *, company_code: str | None = None, page_size: int = VENDOR_PAGE_LIMIT
    ) -> AsyncIterator[list[BaswareVendor]]:
        params = {"pageSize": str(page_size)}
        if company_code is not None:
            params["companyCode"] = company_code
        async for body in self._list_pages("/v1/vendors", params):
            yield VendorList.model_validate_json(body).vendor_entities

    async def iter_matching_order_pages(
        self, *, company_code: str | None = None, page_size: int = MATCHING_ORDER_PAGE_LIMIT
    ) -> AsyncIterator[list[MatchingOrder]]:
        params = {"pageSize": str(page_size)}
        if company_code is not None:
            params["companyCode"] = company_code
        async for body in self._list_pages("/v1/matchingOrders", params):
            yield MatchingOrderList.model_validate_json(body).matching_orders

    async def get_vendor(self, external_code: str) -> BaswareVendor | None:
        response = await self._call("GET", f"/v1/vendors/{external_code}", ok=(200, 404))
        if response.status_code == 404:
            return None
        return BaswareVendor.model_validate_json(response.content)

    # --- requestStatus ---

    async def get_request_status(
        self, request_id: str, *, system: str | None = None, ignore_successful_items: bool = False
    ) -> RequestStatus:
        params = {"ignoreSuccessfulItems": "true"} if ignore_successful_items else {}
        if system is not None:
            params["system"] = system
        response = await self._call("GET", f"/v1/requestStatus/{request_id}", params=params)
        statuses = RequestStatusResponse.model_validate_json(response.content).request_status
        if not statuses:
            raise BaswareError(f"Basware GET /v1/requestStatus/{request_id}: empty answer")
        return statuses[0]

    async def wait_for_request_status(
        self,
        request_id: str,
        *,
        timeout: float,
        first_interval: float = 0.05,
        max_interval: float = 2.0,
    ) -> RequestStatus:
        """Polls requestStatus until it is final (not InProgress); BaswarePending at the deadline.

        A 404 is read as "not visible yet" rather than as an error, until the deadline.
        """
        deadline = time.monotonic() + timeout
        interval = first_interval
        while True:
            try:
                status = await self.get_request_status(request_id)
                if status.is_final:
                    return status
            except BaswareNotFound:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BaswarePending(
                    f"Basware request {request_id} still in progress after {timeout}s"
                )
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    async def acknowledge_request_status(self, request_ids: Sequence[str]) -> None:
        body = encode({"requestIds": list(request_ids)})
        await self._call("POST", "/v1/requestStatus/acknowledge", body=body)

    # --- invoices: SmartPDF upload, accounting documents ---

    async def upload_invoice(
        self, pdf: bytes, *, receiving_email: str, notification_email: str
    ) -> InvoiceUpload:
        """SmartPDF's two steps: ask for a pre-signed URL, then PUT the PDF there (no bearer)."""
        upload = await self.request_invoice_upload(
            receiving_email=receiving_email, notification_email=notification_email
        )
        return await self.put_invoice_pdf(upload, pdf)

    async def request_invoice_upload(
        self, *, receiving_email: str, notification_email: str
    ) -> UploadResponse:
        """SmartPDF step 1: a pre-signed URL. Nothing reaches Basware's inbox before step 2."""
        request = {
            "receivingEmailAddress": receiving_email,
            "notificationEmailAddress": notification_email,
        }
        response = await self._call("POST", "/v2/smartpdf/invoiceUpload", body=encode(request))
        return UploadResponse.model_validate_json(response.content)

    async def put_invoice_pdf(self, upload: UploadResponse, pdf: bytes) -> InvoiceUpload:
        """SmartPDF step 2: the PDF to the pre-signed URL. A transport failure here leaves it
        unknown whether Basware got the document (a retry could make a second one)."""
        await self._unauthenticated(
            "PUT",
            upload.upload_url.get_secret_value(),
            "PUT invoice PDF to the pre-signed upload URL",
            content=pdf,
            headers={"Content-Type": "application/pdf"},
        )
        return InvoiceUpload(bum_id=upload.bum_id)

    async def iter_accounting_document_pages(
        self,
        *,
        processing_status: str | None = "WaitingForTransfer",
        company_code: str | None = None,
        last_updated: datetime | None = None,
        page_size: int = ACCOUNTING_DOCUMENT_PAGE_LIMIT,
    ) -> AsyncIterator[list[AccountingDocument]]:
        """Each page of GET /v1/accountingDocuments, following the continuation token; a
        page is read when the caller asks for it."""
        params = {"pageSize": str(page_size)}
        if processing_status is not None:
            params["ProcessingStatus"] = processing_status
        if company_code is not None:
            params["companyCode"] = company_code
        if last_updated is not None:
            params["lastUpdated"] = _instant(last_updated)
        token: str | None = None
        while True:
            headers = {CONTINUATION_HEADER: token} if token else None
            answer = await self._get_through_redirect("/v1/accountingDocuments", params, headers)
            if answer is None:
                return
            body, token = answer
            yield AccountingDocumentResponse.model_validate_json(body).accounting_documents
            if not token:
                return

    async def iter_accounting_documents(
        self,
        *,
        processing_status: str | None = "WaitingForTransfer",
        company_code: str | None = None,
        last_updated: datetime | None = None,
        page_size: int = ACCOUNTING_DOCUMENT_PAGE_LIMIT,
    ) -> AsyncIterator[AccountingDocument]:
        """Every document of GET /v1/accountingDocuments (see `iter_accounting_document_pages`)."""
        async for documents in self.iter_accounting_document_pages(
            processing_status=processing_status,
            company_code=company_code,
            last_updated=last_updated,
            page_size=page_size,
        ):
            for document in documents:
                yield document

    async def get_accounting_document(self, invoice_id: str) -> AccountingDocument | None:
        answer = await self._get_through_redirect(f"/v1/accountingDocuments/{invoice_id}")
        if answer is None:
            return None
        documents = AccountingDocumentResponse.model_validate_json(answer[0])
        return documents.accounting_documents[0] if documents.accounting_documents else None

    async def acknowledge(self, invoice_id: str) -> bool:
        """True when this call acknowledged the invoice; False when Basware answers 405
        (already acknowledged, or not waiting for an acknowledge)."""
        path = f"/v1/accountingDocuments/{invoice_id}/acknowledge"
        response = await self._call("POST", path, ok=(200, 405))
        return response.status_code == 200

    async def _respond(
        self, invoice_id: str, kind: str, entity_type: str, body: BaswareModel
    ) -> AcceptedRequest:
        path = f"/v1/accountingDocuments/{invoice_id}/{kind}"
        payload = body.payload()
        response = await self._call("POST", path, body=encode(payload))
        return AcceptedRequest(
            request_id=self._request_id(response, f"POST {path}"),
            entity_type=entity_type,
            external_codes=[str(payload["externalCode"])],
        )

    async def post_transfer_response(
        self, invoice_id: str, response: TransferResponse
    ) -> AcceptedRequest:
        return await self._respond(invoice_id, "transferResponses", "TransferResponse", response)

    async def post_prebook_response(
        self, invoice_id: str, response: PrebookResponse
    ) -> AcceptedRequest:
        return await self._respond(invoice_id, "prebookResponses", "PrebookResponse", response)

    async def post_payment_response(
        self, invoice_id: str, response: PaymentResponse
    ) -> AcceptedRequest:
        return await self._respond(invoice_id, "paymentResponses", "PaymentResponse", response)

    async def get_invoice_status(
        self, company_code: str, invoice_number: str, invoice_date: date
    ) -> list[InvoiceStatus]:
        """Where invoices with this number are in Basware; empty when none (or the route is off)."""
        params = {
            "companyCode": company_code,
            "invoiceNumber": invoice_number,
            "invoiceDate": f"{invoice_date.isoformat()}T00:00:00Z",
        }
        response = await self._call(
            "GET", "/v1/accountingDocuments/status", params=params, ok=(200, 404)
        )
        if response.status_code == 404:
            return []
        return [InvoiceStatus.model_validate(item) for item in response.json()]

    # --- push notifications ---

    async def subscribe(self, subscriptions: Sequence[Subscription]) -> list[Subscription]:
        """Basware calls each URL with a ConnectionTest first and refuses it unless answered 200."""
        body = encode([s.payload() for s in subscriptions])
        response = await self._call("POST", "/v1/subscriptions", body=body)
        return [Subscription.model_validate(item) for item in response.json()]

    async def list_subscriptions(self, *, task_type: str | None = None) -> list[Subscription]:
        params = {"taskType": task_type} if task_type else None
        response = await self._call("GET", "/v1/subscriptions", params=params, ok=(200, 404))
        if response.status_code == 404:
            return []
        return SubscriptionsResponse.model_validate_json(response.content).subscriptions

    # --- health ---

    async def ping(self) -> BaswarePing:
        """A token (finding the region if needed) and one harmless read."""
        await self._call("GET", "/v1/vendors", params={"pageSize": "1"}, ok=(200, 404))
        issued = self._issued
        if issued is None:
            raise BaswareAuthError("Basware ping: no token was issued")
        return BaswarePing(
            region=await self.region(),
            issuer=issued.claims.iss,
            tenant=issued.claims.bwcid,
            scopes=issued.claims.scope.split(),
            clock_skew_seconds=issued.clock_skew,
        )
