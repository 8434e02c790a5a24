"""The async Visma.net ERP client: tokens, company header, paging, quota, retries.

One `VismaClient` per (credential, company): it owns one token (fetched on first use, again
shortly before expiry and after a 401; never two fetches at once) and asks its quota gate
(ratelimit.py; a service's is the company's shared plan) before every call, in the call's
lane. Every call sends `ipp-company-id`. 429 and 5xx answers and transport errors are
retried with backoff, Retry-After honoured; other errors raise a typed `VismaError` at once.
A call that may not wait for the quota (bulk work the caller puts aside) raises QuotaSpent
instead of waiting, on a spent lane as on a 429.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from mlconnector.field_problems import FieldProblem, field_problems
from mlconnector.retry import RetriesExhausted, parse_retry_after, retrying
from mlconnector.tokens import AccessToken, BearerAuth, TokenCache
from mlconnector.visma.credentials import VismaClientSettings, VismaCredentials, VismaEndpoints
from mlconnector.visma.datetimes import format_filter_datetime, parse_visma_datetime
from mlconnector.visma.errors import (
    VismaNotFoundError,
    VismaPreconditionFailedError,
    VismaUnavailableError,
    api_error,
    token_error,
)
from mlconnector.visma.models import (
    ListMetadata,
    ListShape,
    VismaPurchaseOrder,
    VismaPurchaseReceipt,
    VismaRecord,
    VismaSupplier,
    VismaSupplierInvoice,
)
from mlconnector.visma.ratelimit import (
    QuotaGate,
    QuotaLane,
    QuotaSpent,
    RateLimitStatus,
    UnplannedQuota,
    read_rate_limit,
)

R = TypeVar("R", bound=VismaRecord)
M = TypeVar("M", bound=BaseModel)


class _BusyAnswer(Exception):
    """A 429 or 5xx answer, tried again by the retry policy."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retry_after(failure: Exception) -> float | None:
    if isinstance(failure, _BusyAnswer):
        return parse_retry_after(failure.response.headers.get("retry-after"))
    return None


class TokenAnswer(BaseModel):
    access_token: str
    expires_in: float
    token_type: str = "Bearer"  # noqa: S105
    scope: str = ""


class UnreadableRow(BaseModel):
    """A row of a list that fails its model (a date 2026-13-45, a required field missing):
    what names it, as far as it reads, and what failed, by field; never its values."""

    model_config = ConfigDict(frozen=True)

    record_id: str | None
    supplier_number: str | None
    last_modified: datetime | None
    # sha256 of the row as sent (without the list metadata): the same row, the same hash.
    content_hash: str
    problems: tuple[FieldProblem, ...]


class VismaPage(BaseModel, Generic[R]):
    """One page of a list: its records, the rows that do not read as one, and what Visma
    said about the whole result."""

    page_number: int
    records: list[R]
    unreadable: list[UnreadableRow] = []
    total_count: int | None = None
    max_page_size: int | None = None


class DimensionSegment(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    segment_id: int
    description: str | None = None
    segment_values: list[dict[str, Any]] = []


class DimensionAnswer(BaseModel):
    """`/v1/dimension/{id}`: only what the reader needs to flatten it into values."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str
    segments: list[DimensionSegment] = []


class ListEnvelope(BaseModel):
    """The newer list shape: `{pageNumber, pageSize, totalCount, records}`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    total_count: int | None = None
    records: list[dict[str, Any]] = []


def _list_rows(
    model: type[VismaRecord], content: bytes, page_size: int
) -> tuple[list[dict[str, Any]], ListMetadata | None]:
    """A list answer's rows and what it says about the whole result, in either shape."""
    if model.list_shape is ListShape.ENVELOPE:
        envelope = ListEnvelope.model_validate_json(content)
        total = envelope.total_count
        # No per-page maximum is stated: the page size asked for is taken as granted.
        metadata = (
            None if total is None else ListMetadata(total_count=total, max_page_size=page_size)
        )
        return envelope.records, metadata
    rows: list[dict[str, Any]] = json.loads(content)
    # Each row keeps its `metadata` (a model extra); content hashes leave it out.
    raw_metadata = rows[0].get("metadata") if rows else None
    return rows, ListMetadata.model_validate(raw_metadata) if raw_metadata else None


def _raw_hash(row: Mapping[str, Any]) -> str:
    body = {k: v for k, v in row.items() if k != "metadata"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_rows(model: type[R], rows: Sequence[Any]) -> tuple[list[R], list[UnreadableRow]]:
    """Each row as the model, or, when it fails, as an unreadable row: one bad record never
    stops the list it is in."""
    records: list[R] = []
    unreadable: list[UnreadableRow] = []
    for row in rows:
        try:
            records.append(model.model_validate(row))
        except ValidationError as error:
            raw = row if isinstance(row, dict) else {}
            record_id, supplier = model.raw_identity(raw)
            stamp = parse_visma_datetime(raw.get("lastModifiedDateTime"))
            unreadable.append(
                UnreadableRow(
                    record_id=record_id,
                    supplier_number=supplier,
                    last_modified=stamp if isinstance(stamp, datetime) else None,
                    content_hash=_raw_hash(raw),
                    problems=field_problems(error),
                )
            )
    return records, unreadable


class VismaPing(BaseModel):
    company_id: str
    rate_limit: RateLimitStatus | None = None


class WebhookFeedback(BaseModel):
    notificationId: str
    source: str
    description: str
    isSuccess: bool


def _path(*segments: str) -> str:
    return "/".join(urllib.parse.quote(segment, safe="") for segment in segments)


class VismaClient:
    def __init__(
        self,
        credentials: VismaCredentials,
        endpoints: VismaEndpoints | None = None,
        settings: VismaClientSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        quota: QuotaGate | None = None,
    ) -> None:
        self.credentials = credentials
        self.endpoints = endpoints or VismaEndpoints()
        self.settings = settings or VismaClientSettings()
        self._sleep = sleep
        base_url = self.endpoints.api_base_url
        self._http = httpx.AsyncClient(
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=self.settings.timeout_seconds,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": self.settings.user_agent},
        )
        self.tokens = TokenCache(
            self._fetch_token, refresh_margin=self.settings.token_refresh_margin_seconds
        )
        self._auth = BearerAuth(self.tokens)
        self.quota = quota or UnplannedQuota()
        # What the latest answer's X-RateLimit-* headers said.
        self.rate_limit: RateLimitStatus | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- tokens -------------------------------------------------------------------------

    async def _fetch_token(self) -> AccessToken:
        creds = self.credentials
        form = {
            "grant_type": "client_credentials",
            "scope": " ".join(creds.scopes),
            "tenant_id": creds.tenant_id,
        }
        url = self.endpoints.token_url
        send: Callable[[], Awaitable[httpx.Response]]
        if self.settings.client_auth == "basic":
            basic = httpx.BasicAuth(
                urllib.parse.quote_plus(creds.client_id),
                urllib.parse.quote_plus(creds.client_secret.get_secret_value()),
            )
            send = lambda: self._http.post(url, data=form, auth=basic)  # noqa: E731
        else:
            form["client_id"] = creds.client_id
            form["client_secret"] = creds.client_secret.get_secret_value()
            send = lambda: self._http.post(url, data=form)  # noqa: E731
        response = await self._send_retrying(send, "POST", "connect/token")
        if response.status_code != 200:
            raise token_error(
                response.status_code,
                response.content,
                client_id=creds.client_id,
                tenant_id=creds.tenant_id,
            )
        answer = TokenAnswer.model_validate_json(response.content)
        return AccessToken.from_lifetime(answer.access_token, answer.expires_in, answer.scope)

    # -- transport ----------------------------------------------------------------------

    async def _send_retrying(
        self,
        send: Callable[[], Awaitable[httpx.Response]],
        method: str,
        path: str,
        *,
        lane: QuotaLane = QuotaLane.LIVE,
        wait_for_quota: bool = True,
    ) -> httpx.Response:
        """Sends until the answer is neither 429 nor 5xx, or the retry policy gives up: then
        the last answer, or VismaUnavailableError when there was none."""

        async def attempt() -> httpx.Response:
            response = await send()
            status = read_rate_limit(response.headers)
            if status is not None:
                self.rate_limit = status
                await self.quota.observe(status)
            if response.status_code == 429 and not wait_for_quota:
                wait = parse_retry_after(response.headers.get("retry-after")) or 1.0
                resumes_at = datetime.now(UTC) + timedelta(seconds=wait)
                raise QuotaSpent(self.credentials.company_id, lane, resumes_at)
            if response.status_code == 429 or response.status_code >= 500:
                raise _BusyAnswer(response)
            return response

        try:
            response, _ = await retrying(
                attempt,
                self.settings.backoff,
                retry_on=(httpx.TransportError, _BusyAnswer),
                retry_after=_retry_after,
                sleep=self._sleep,
            )
        except RetriesExhausted as exhausted:
            if isinstance(exhausted.failure, _BusyAnswer):
                return exhausted.failure.response
            raise VismaUnavailableError(
                f"Visma {method} {path} failed {exhausted.attempts} times: "
                f"{type(exhausted.failure).__name__}"
            ) from exhausted.failure
        return response

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: BaseModel | None = None,
        lane: QuotaLane = QuotaLane.LIVE,
        wait_for_quota: bool = True,
    ) -> httpx.Response:
        request_headers = {"ipp-company-id": self.credentials.company_id, **(headers or {})}
        content = None
        if body is not None:
            content = body.model_dump_json(by_alias=True).encode()
            request_headers["Content-Type"] = "application/json"

        async def send() -> httpx.Response:
            await self.quota.admit(lane, wait=wait_for_quota)
            return await self._http.request(
                method,
                path,
                params=params,
                headers=request_headers,
                content=content,
                auth=self._auth,
            )

        response = await self._send_retrying(
            send, method, path, lane=lane, wait_for_quota=wait_for_quota
        )
        if response.is_success:
            return response
        raise api_error(
            method,
            path,
            response.status_code,
            response.content,
            request_id=response.headers.get("ipp-request-id"),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            company_id=self.credentials.company_id,
        )

    async def _get_model(self, model: type[M], *segments: str) -> M:
        response = await self._request("GET", _path(*segments))
        return model.model_validate_json(response.content)

    # -- reading ------------------------------------------------------------------------

    async def iter_page_results(
        self,
        model: type[R],
        *,
        modified_since: datetime | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[VismaPage[R]]:
        """Pages of `model.resource` in key order; with `modified_since`, only
        `lastModifiedDateTime >= modified_since` (zone-less, truncated to the millisecond).

        Stops on an empty page, a short page, or when totalCount says the last page was read.
        """
        if model.list_shape is ListShape.DIMENSION:
            yield await self._dimension_values(model, modified_since)
            return
        params = {"pageSize": str(page_size), **model.list_params}
        if modified_since is not None and model.filters_by_modified:
            params["lastModifiedDateTime"] = format_filter_datetime(modified_since)
            params["lastModifiedDateTimeCondition"] = ">="
        page_number = 1
        while True:
            params["pageNumber"] = str(page_number)
            response = await self._request("GET", model.resource, params=params)
            rows, metadata = _list_rows(model, response.content, page_size)
            if not rows:
                return
            records, unreadable = read_rows(model, rows)
            yield VismaPage[R](
                page_number=page_number,
                records=records,
                unreadable=unreadable,
                total_count=metadata.total_count if metadata else None,
                max_page_size=metadata.max_page_size if metadata else None,
            )
            effective = min(page_size, metadata.max_page_size) if metadata else page_size
            if len(rows) < effective:
                return
            if metadata is not None and page_number * effective >= metadata.total_count:
                return
            page_number += 1

    async def _dimension_values(
        self, model: type[R], modified_since: datetime | None
    ) -> VismaPage[R]:
        """Every value of every segment of one dimension, as one page; with `modified_since`,
        only values whose `lastModified` is not older (the route itself has no filter)."""
        try:
            response = await self._request("GET", model.resource)
        except VismaNotFoundError:
            # A company without the dimension has no values in it.
            return VismaPage[R](page_number=1, records=[], total_count=0)
        dimension = DimensionAnswer.model_validate_json(response.content)
        values = [
            model.model_validate(
                {
                    **value,
                    "dimensionId": dimension.id,
                    "segmentId": segment.segment_id,
                    "segmentDescription": segment.description,
                }
            )
            for segment in dimension.segments
            for value in segment.segment_values
        ]
        if modified_since is not None:
            values = [v for v in values if v.last_modified_date_time >= modified_since]
        return VismaPage[R](page_number=1, records=values, total_count=len(values))

    async def dimension_segments(self, dimension_id: str) -> list[int]:
        """The segment ids of one dimension (`GET /v1/dimension/{id}`)."""
        response = await self._request("GET", _path("dimension", dimension_id))
        return [
            s.segment_id for s in DimensionAnswer.model_validate_json(response.content).segments
        ]

    async def iter_pages(
        self,
        model: type[R],
        *,
        modified_since: datetime | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[list[R]]:
        """The records of each page (see `iter_page_results`)."""
        async for page in self.iter_page_results(
            model, modified_since=modified_since, page_size=page_size
        ):
            yield page.records

    async def get_supplier(self, number: str) -> VismaSupplier:
        return await self._get_model(VismaSupplier, "supplier", number)

    async def get_purchase_order(self, order_nbr: str) -> VismaPurchaseOrder:
        return await self._get_model(VismaPurchaseOrder, "purchaseorder", order_nbr)

    async def get_purchase_receipt(self, receipt_nbr: str) -> VismaPurchaseReceipt:
        return await self._get_model(VismaPurchaseReceipt, "PurchaseReceipt", receipt_nbr)

    async def get_supplier_invoice(
        self, document_type: str, reference_number: str
    ) -> VismaSupplierInvoice:
        return await self._get_model(
            VismaSupplierInvoice, "supplierInvoice", document_type, reference_number
        )

    async def get_attachment(
        self,
        attachment_id: str,
        *,
        lane: QuotaLane = QuotaLane.LIVE,
        wait_for_quota: bool = True,
    ) -> bytes:
        """The file of an invoice attachment (`VismaSupplierInvoice.attachments[i].id`);
        without `wait_for_quota`, QuotaSpent when the lane has no call left."""
        response = await self._request(
            "GET", _path("attachment", attachment_id), lane=lane, wait_for_quota=wait_for_quota
        )
        return response.content

    async def ping(self) -> VismaPing:
        """Fetches a token and reads one supplier: proves credentials, company and scope."""
        await self._request(
            "GET", VismaSupplier.resource, params={"pageNumber": "1", "pageSize": "1"}
        )
        return VismaPing(company_id=self.credentials.company_id, rate_limit=self.rate_limit)

    # -- writing ------------------------------------------------------------------------

    async def update_supplier_invoice_note(
        self, document_type: str, reference_number: str, note: str, *, attempts: int = 3
    ) -> str:
        """Writes `note` on a supplier invoice (never a financial field); returns the new ETag.

        GET for the ETag, then PUT with If-Match; a 412 (changed in between) reads again.
        """
        path = _path("supplierInvoice", document_type, reference_number)
        body = _NoteUpdate(note=_Value(value=note))
        attempt = 1
        while True:
            current = await self._request("GET", path)
            etag = current.headers.get("etag", "")
            try:
                response = await self._request("PUT", path, headers={"If-Match": etag}, body=body)
            except VismaPreconditionFailedError:
                if attempt >= attempts:
                    raise
                attempt += 1
                continue
            return str(response.headers.get("etag", ""))

    async def post_webhook_feedback(
        self,
        notification_id: str,
        *,
        is_success: bool,
        description: str,
        source: str = "ml-connector",
    ) -> None:
        """Reports how a webhook notification was handled (shown in the ERP's feedback window)."""
        feedback = WebhookFeedback(
            notificationId=notification_id,
            source=source,
            description=description,
            isSuccess=is_success,
        )
        await self._request("POST", "webhooknotificationfeedback", body=feedback)


class _Value(BaseModel):
    value: str


class _NoteUpdate(BaseModel):
    note: _Value
