"""The `/v1/` service API: authentication, quota, company binding, scopes, then the resource.

Paths and query names are case-insensitive; `/API/controller/api/v1/` is accepted as an alias
of `/v1/` (the old layout, docs/visma-net.md §4). Every answer carries `Ipp-Request-Id` and
the four X-RateLimit headers, and lands in the request log. Reads: lists and single GETs of every
entity (single GETs with an ETag mirrored in `timeStamp`); writes: POST and PUT of suppliers
and PUT of a supplier invoice's text; any call can run in the background (`erp-api-background`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from visma_sandbox.background import HEADER as BACKGROUND_HEADER
from visma_sandbox.background import WEBHOOK_ENTITY as BACKGROUND_WEBHOOK_ENTITY
from visma_sandbox.background import WEBHOOK_EVENT as BACKGROUND_WEBHOOK_EVENT
from visma_sandbox.background import (
    BackgroundAccepted,
    BackgroundHeaderError,
    BackgroundJob,
    BackgroundMode,
    BackgroundState,
    parse_background_header,
    utc_text,
)
from visma_sandbox.config import SCOPE_PREFIX
from visma_sandbox.entities import SPECS, EntityName, EntitySpec
from visma_sandbox.listing import QueryError, lower_query, parse_list_request
from visma_sandbox.ratelimit import Quota, RequestIdentity
from visma_sandbox.render import list_metadata, render_dimension, render_record, time_stamp
from visma_sandbox.requestlog import LoggedRequest, kept_headers
from visma_sandbox.responses import (
    INVALID_COMPANY,
    NO_LICENCE,
    gateway_timeout,
    ipp_error,
    json_response,
    message_error,
    too_many_requests,
)
from visma_sandbox.schemas import DocumentType
from visma_sandbox.state import CompanyState, SandboxState
from visma_sandbox.store import EntityTable, StoredRecord
from visma_sandbox.tokens import TokenGrant
from visma_sandbox.webhooks import WebhookFeedback
from visma_sandbox.writes import WriteError, invoice_changes, read_write_body

PREFIXES = ("/v1/", "/api/controller/api/v1/")
_SCOPE_BY_METHOD = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}
_DOCUMENT_TYPES: tuple[str, ...] = typing.get_args(DocumentType)
_ENTITIES = {e.value: e for e in EntityName}

RouteKind = Literal[
    "list",
    "get",
    "get_any_type",  # supplierInvoice/{ref}: whichever document type has that number
    "segment",  # dimension/{id}/{segmentId}[/{valueId} | /publicid/{publicId}]
    "put",
    "post",
    "attachment",
    "feedback",
    "background",
    "background_content",
]
# Reading a job's state or payload is never itself a background job.
_FOREGROUND_ONLY = frozenset({"background", "background_content"})


@dataclass(frozen=True)
class Route:
    name: str  # e.g. "supplier.list", logged and counted
    kind: RouteKind
    entity: EntityName | None = None
    key: str = ""
    # Below a dimension: (segmentId,), (segmentId, valueId) or (segmentId, "publicid", id).
    sub: tuple[str, ...] = ()


def _entity_routes(entity: EntityName, rest: list[str]) -> dict[str, Route]:
    """Method -> route for `/v1/<entity>/...`; empty when the path names nothing."""
    name, n = entity.value, len(rest)
    if n == 0:
        routes = {"GET": Route(f"{name}.list", "list", entity)}
        if entity is EntityName.SUPPLIER:
            routes["POST"] = Route(f"{name}.post", "post", entity)
        return routes
    if entity is EntityName.SUPPLIER_INVOICE:
        if n == 1:
            return {"GET": Route(f"{name}.get", "get_any_type", entity, rest[0])}
        if n == 2:
            key = f"{rest[0]}/{rest[1]}"
            return {
                "GET": Route(f"{name}.get", "get", entity, key),
                "PUT": Route(f"{name}.put", "put", entity, key),
            }
        return {}
    if entity is EntityName.DIMENSION and n in (2, 3, 4):
        if n == 4 and rest[2].lower() != "publicid":
            return {}
        kind = "segment.get" if n == 2 else "value.get"
        return {"GET": Route(f"{name}.{kind}", "segment", entity, rest[0], tuple(rest[1:]))}
    if n == 1:
        routes = {"GET": Route(f"{name}.get", "get", entity, rest[0])}
        if entity is EntityName.SUPPLIER:
            routes["PUT"] = Route(f"{name}.put", "put", entity, rest[0])
        return routes
    return {}


def resolve(method: str, segments: list[str]) -> Route | str:
    """The route for a path below /v1/, or the reason there is none ("404" or "405")."""
    if not segments:
        return "404"
    head, n = segments[0].lower(), len(segments)
    entity = _ENTITIES.get(head)
    routes: dict[str, Route] = {}
    if entity is not None:
        routes = _entity_routes(entity, segments[1:])
    elif head == "attachment" and n == 2:
        routes = {"GET": Route("attachment.get", "attachment", key=segments[1])}
    elif head == "webhooknotificationfeedback" and n == 1:
        routes = {"POST": Route("webhooknotificationfeedback.post", "feedback")}
    elif head == "background" and n == 2:
        routes = {"GET": Route("background.get", "background", key=segments[1])}
    elif head == "background" and n == 3 and segments[2].lower() == "content":
        routes = {"GET": Route("background.content", "background_content", key=segments[1])}
    if not routes:
        return "404"
    return routes.get(method, "405")


class VismaApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        # Running background jobs, kept referenced until they finish.
        self._jobs: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Cancels the background jobs still running (the server is stopping)."""
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def handle(self, request: Request) -> Response:
        state = self.state
        arrived = time.time()
        method = request.method
        path = request.url.path
        found = resolve(method, _segments(path))
        route_name = found.name if isinstance(found, Route) else f"unrouted.{found}"
        grant: TokenGrant | None = None
        quota: Quota | None = None
        settings = state.settings
        response: Response
        # The token is checked on arrival: a slow answer does not expire it on the way.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            grant = state.tokens.verify(token.strip())
        fault = state.faults.apply(method, path, grant.company_id if grant else None)
        background = request.headers.get(BACKGROUND_HEADER)
        if not isinstance(found, Route) or found.kind in _FOREGROUND_ONLY:
            background = None
        # A background call answers at once; its job takes the delay instead.
        delay = (settings.latency_ms + fault.delay_ms) / 1000
        timed_out = background is None and delay > settings.sync_timeout_seconds
        if delay and background is None:
            await asyncio.sleep(min(delay, settings.sync_timeout_seconds))
        if grant is None:
            response = message_error(401, "Authorization has been denied for this request.")
        else:
            now = time.monotonic()
            quota = state.rate_limits.hit(
                (grant.tenant_id, grant.client_id),
                limit=settings.rate_limit,
                window=settings.rate_limit_window_seconds,
                now=now,
            )
            identity = self._identity(request, grant)
            repeat_wait = None
            if quota.allowed and identity is not None:
                repeat_wait = state.repeat_guard.check(
                    identity, now, same=self._same_rule(), failing=self._failing_rule()
                )
            if not quota.allowed:
                response = too_many_requests(quota.reset_seconds)
            elif repeat_wait is not None:
                response = too_many_requests(repeat_wait, "Same request made too many times.")
            elif timed_out:
                response = gateway_timeout(settings.sync_timeout_seconds)
            elif fault.status == 429:
                response = too_many_requests(fault.retry_after)
            elif fault.status is not None:
                response = ipp_error(fault.status, "An error has occurred (injected fault).")
            else:
                response = await self._authorised(request, grant, found, background, delay)
            if identity is not None and response.status_code >= 400 and response.status_code != 429:
                state.repeat_guard.failed(identity, now)
        if quota is None:
            window = settings.rate_limit_window_seconds
            quota = Quota(settings.rate_limit, settings.rate_limit, math.ceil(window), True)
        response.headers.update(quota.headers())
        response.headers["Ipp-Request-Id"] = str(uuid.uuid4())
        retry_after = response.headers.get("retry-after")
        state.log.add(
            LoggedRequest(
                seq=state.log.next_seq(),
                at=arrived,
                method=method,
                path=path,
                query=request.url.query,
                route=route_name,
                status=response.status_code,
                company_id=grant.company_id if grant else None,
                tenant_id=grant.tenant_id if grant else None,
                client_id=grant.client_id if grant else None,
                token_id=grant.jti if grant else None,
                rate_limit_remaining=quota.remaining,
                retry_after=int(retry_after) if retry_after else None,
                headers=kept_headers(request.headers),
            )
        )
        return response

    def _same_rule(self) -> tuple[int, float] | None:
        settings = self.state.settings
        if settings.same_request_limit is None:
            return None
        return settings.same_request_limit, settings.same_request_window_seconds

    def _failing_rule(self) -> tuple[int, float] | None:
        settings = self.state.settings
        if settings.failing_request_limit is None:
            return None
        return settings.failing_request_limit, settings.failing_request_window_seconds

    def _identity(self, request: Request, grant: TokenGrant) -> RequestIdentity | None:
        """What makes two requests "the same" for the repeat rules; None when both are off."""
        if self._same_rule() is None and self._failing_rule() is None:
            return None
        return (grant.tenant_id, request.method, request.url.path.lower(), request.url.query)

    async def _authorised(
        self,
        request: Request,
        grant: TokenGrant,
        found: Route | str,
        background: str | None,
        delay: float,
    ) -> Response:
        state = self.state
        if grant.company_id is None:
            # A token minted for the customer tenant: Connect said yes, the ERP says no
            # (docs/visma-net.md §2.3).
            return ipp_error(401, "No license for this company.", NO_LICENCE)
        company = state.company(grant.company_id)
        header = request.headers.get("ipp-company-id")
        if state.settings.company_id_mode == "legacy":
            if header is None or header.strip() != company.company_id:
                return ipp_error(
                    400, "Invalid parameter exception: ipp-company-id", INVALID_COMPANY
                )
        elif header is not None and header.strip() != company.company_id:
            return ipp_error(
                401,
                "Invalid parameter exception: ipp-company-id names a company the token "
                "does not give access to.",
                INVALID_COMPANY,
            )
        required = SCOPE_PREFIX + _SCOPE_BY_METHOD.get(request.method, "update")
        if required not in grant.scopes:
            return message_error(403, f"The token lacks the scope {required}.")
        if found == "404" or not isinstance(found, Route):
            if found == "405":
                return message_error(
                    405, f"The requested resource does not support http method '{request.method}'."
                )
            return message_error(
                404, f"No HTTP resource was found that matches the request URI '{request.url}'."
            )
        if background is not None:
            try:
                mode = parse_background_header(background)
            except BackgroundHeaderError as exc:
                return ipp_error(400, str(exc))
            return await self._start_background(request, company, found, mode, delay)
        return await self._answer(request, company, found)

    async def _answer(self, request: Request, company: CompanyState, route: Route) -> Response:
        try:
            return await self._resource(request, company, route)
        except (QueryError, WriteError) as exc:
            return ipp_error(400, str(exc))

    async def _resource(self, request: Request, company: CompanyState, route: Route) -> Response:
        if route.kind == "attachment":
            content = company.attachment(route.key)
            if content is None:
                return ipp_error(404, f"Attachment {route.key} not found.")
            return Response(content, 200, media_type="application/pdf")
        if route.kind == "feedback":
            try:
                feedback = WebhookFeedback.model_validate_json(await request.body())
            except ValidationError as exc:
                return ipp_error(400, f"Invalid feedback: {exc.error_count()} error(s).")
            self.state.webhooks.feedback.append(feedback)
            return Response(status_code=204)
        if route.kind in _FOREGROUND_ONLY:
            return self._background_answer(company, route)
        assert route.entity is not None
        if route.kind == "list":
            return self._list(request, company, route.entity)
        if route.kind == "post":
            return await self._post_supplier(request, company)
        table = company.table(route.entity)
        spec = table.spec
        candidates: list[tuple[str, ...]]
        if route.kind == "get_any_type":
            candidates = [(route.key, t) for t in _DOCUMENT_TYPES]
        else:
            candidates = [spec.parse_key(route.key)]
        stored = next((s for k in candidates if (s := table.get(k)) is not None), None)
        if stored is None:
            return ipp_error(404, f"{spec.name.value} {route.key} not found.")
        if route.kind == "put":
            return await self._put(request, company, spec, stored)
        etag = {"ETag": f'"{time_stamp(stored.row_version)}"'}
        if spec.name is EntityName.DIMENSION:
            return self._dimension(request, stored, route, etag)
        # A single GET shows every block: the expand* flags are list parameters
        # (docs/visma-net.md §7).
        return json_response(render_record(stored, spec, self.state.settings), 200, etag)

    def _list(self, request: Request, company: CompanyState, entity: EntityName) -> Response:
        settings = self.state.settings
        spec = SPECS[entity]
        values, spelt = lower_query(request.query_params.multi_items())
        max_page_size = settings.max_page_sizes.get(entity.value, settings.max_page_size)
        parsed = parse_list_request(spec, values, spelt, max_page_size)
        rows = company.table(entity).select(parsed.query)
        if spec.lists_keys_only:
            # `/v1/dimension` answers "a list of all Dimension names/IDs" (string[]).
            return json_response(json.dumps([spec.key_text(r.key) for r in rows]).encode())
        start = (parsed.page_number - 1) * parsed.page_size
        if spec.enveloped:
            # The newer list shape (docs/visma-net.md §6.1): an envelope, no per-row metadata.
            records = b",".join(
                render_record(r, spec, settings, omit=parsed.omit)
                for r in rows[start : start + parsed.page_size]
            )
            head = b'{"pageNumber":%d,"pageSize":%d,"totalCount":%d,"records":[' % (
                parsed.page_number,
                parsed.page_size,
                len(rows),
            )
            company.run_page_hooks(entity, parsed.page_number)
            return json_response(head + records + b"]}")
        metadata = list_metadata(len(rows), max_page_size)
        body = b"[" + b",".join(
            render_record(r, spec, settings, omit=parsed.omit, metadata=metadata)
            for r in rows[start : start + parsed.page_size]
        ) + b"]"  # fmt: skip
        company.run_page_hooks(entity, parsed.page_number)
        return json_response(body)

    def _dimension(
        self, request: Request, stored: StoredRecord, route: Route, etag: dict[str, str]
    ) -> Response:
        values, _ = lower_query(request.query_params.multi_items())
        expand = values.get("expandsegmentsvalues", "true").lower() != "false"
        dimension = render_dimension(stored, self.state.settings, expand_values=expand)
        if not route.sub:
            return json_response(json.dumps(dimension).encode(), 200, etag)
        segment = next(
            (s for s in dimension["segments"] if str(s["segmentId"]) == route.sub[0]), None
        )
        if segment is None:
            return ipp_error(404, f"Segment {route.sub[0]} of dimension {route.key} not found.")
        if len(route.sub) == 1:
            return json_response(json.dumps(segment).encode(), 200, etag)
        by_public = len(route.sub) == 3
        field, wanted = ("publicId", route.sub[2]) if by_public else ("valueId", route.sub[1])
        value = next((v for v in segment.get("segmentValues", []) if v.get(field) == wanted), None)
        if value is None:
            return ipp_error(404, f"Value {wanted} of segment {route.sub[0]} not found.")
        return json_response(json.dumps(value).encode(), 200, etag)

    async def _put(
        self, request: Request, company: CompanyState, spec: EntitySpec, stored: StoredRecord
    ) -> Response:
        """PUT with optional If-Match: 204 and the new ETag, or 412 when the record moved on."""
        if_match = request.headers.get("if-match")
        current = time_stamp(stored.row_version)
        if if_match is not None and if_match.removeprefix("W/").strip('" ') != current:
            return ipp_error(412, "The record was changed by someone else (ETag mismatch).")
        fields = read_write_body(await request.body())
        if spec.name is EntityName.SUPPLIER_INVOICE:
            changes = invoice_changes(fields)
        else:
            number = fields.pop("number", None)
            if number not in (None, stored.key[0]):
                raise WriteError("number cannot be changed.")
            changes = fields
        try:
            updated = company.update(spec.name, spec.key_text(stored.key), changes)
        except ValidationError as exc:
            raise WriteError(_invalid(exc)) from None
        return Response(status_code=204, headers={"ETag": f'"{time_stamp(updated.row_version)}"'})

    async def _post_supplier(self, request: Request, company: CompanyState) -> Response:
        """POST: 201 with a Location whose last segment is the new number, and its ETag."""
        fields = read_write_body(await request.body())
        table = company.table(EntityName.SUPPLIER)
        number = str(fields.get("number") or _next_number(table))
        if table.get((number,)) is not None:
            return ipp_error(409, f"Error inserting the supplier. Supplier {number} exists.")
        try:
            stored = company.put(EntityName.SUPPLIER, {**fields, "number": number})
        except ValidationError as exc:
            raise WriteError(f"Error inserting the supplier. {_invalid(exc)}") from None
        collection = str(request.url.replace(query="")).rstrip("/")
        headers = {
            "Location": f"{collection}/{number}",
            "ETag": f'"{time_stamp(stored.row_version)}"',
        }
        return Response(status_code=201, headers=headers)

    async def _start_background(
        self,
        request: Request,
        company: CompanyState,
        route: Route,
        mode: BackgroundMode,
        delay: float,
    ) -> Response:
        request_body = await request.body()  # read now: Starlette keeps it for the job
        job_id = str(uuid.uuid4())
        state_location = f"{request.base_url}v1/background/{job_id}"
        job = BackgroundJob(
            state=BackgroundState(
                id=job_id,
                receivedUtc=utc_text(datetime.now(UTC)),
                webhookAddress="subscription" if mode.notify else None,
                originalUri=str(request.url),
                hasRequestContent=bool(request_body),
            ),
            state_location=state_location,
        )
        company.background[job_id] = job
        task = asyncio.create_task(self._run_background(request, company, route, job, mode, delay))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return json_response(BackgroundAccepted(id=job_id, stateLocation=state_location), 202)

    async def _run_background(
        self,
        request: Request,
        company: CompanyState,
        route: Route,
        job: BackgroundJob,
        mode: BackgroundMode,
        delay: float,
    ) -> None:
        job.start()
        if delay:
            await asyncio.sleep(delay)
        try:
            response = await self._answer(request, company, route)
        except Exception as exc:  # a job must finish, whatever went wrong in it
            response = ipp_error(500, f"The background operation failed: {type(exc).__name__}.")
        kept = {k: v for k, v in response.headers.items() if k in _KEPT_RESPONSE_HEADERS}
        job.finish(response.status_code, bytes(response.body), kept)
        # The job's writes happen after its request was answered.
        self.state.changed()
        if mode.notify:
            self.state.webhooks.emit(
                company_id=company.company_id,
                tenant_id=company.info.tenant_id,
                entity=BACKGROUND_WEBHOOK_ENTITY,
                event=BACKGROUND_WEBHOOK_EVENT,
                key=job.state.id,
                headers=mode.headers,
                status_code=response.status_code,
                state_location=job.state_location,
            )

    def _background_answer(self, company: CompanyState, route: Route) -> Response:
        job = company.background.get(route.key)
        if job is None:
            return ipp_error(404, f"Background operation {route.key} not found.")
        if route.kind == "background":
            return json_response(job.state)
        if not job.state.hasResponseContent:
            return ipp_error(404, f"Background operation {route.key} has no response content.")
        return Response(job.content, 200, media_type=job.media_type)


_KEPT_RESPONSE_HEADERS = frozenset({"content-type", "etag", "location"})


def _next_number(table: EntityTable) -> str:
    """The number a POST without one gets: one past the highest numeric key."""
    numbers = [int(r.key[0]) for r in table if r.key[0].isdigit()]
    return str(max(numbers, default=0) + 1)


def _invalid(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']} ({exc.error_count()} error(s))."


def _segments(path: str) -> list[str]:
    lowered = path.lower()
    for prefix in PREFIXES:
        if lowered.startswith(prefix):
            return [s for s in path[len(prefix) :].split("/") if s]
    return []
