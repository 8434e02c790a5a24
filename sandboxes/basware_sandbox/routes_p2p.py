"""Inbound P2P APIs (vendors, matchingOrders, matchingOrderLines, master data) and requestStatus.

A POST is checked synchronously (schema, batch limit, 6 MB) and answered 200 with the echoed
records and an x-amzn-RequestId; the verdict comes later in requestStatus (pipeline.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from basware_sandbox import schemas
from basware_sandbox.entities import ENTITY_APIS, EntityApi, api_of_path
from basware_sandbox.http_common import (
    CONTINUATION_HEADER,
    REQUEST_ID_HEADER,
    AuthFailure,
    BadRequest,
    Caller,
    authenticate,
    entity_errors,
    error_entry,
    p2p_auth_failure,
    p2p_error,
    page,
    page_size,
    parse_instant,
    read_json,
    sandbox,
)
from basware_sandbox.records import RequestItem, RequestRecord, StoredRecord, content_hash, iso
from basware_sandbox.state import Tenant

Handler = Callable[[Request, Caller], Awaitable[Response]]


def guarded(
    scope_of: Callable[[Request], str], handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Authenticates for the route's scope, and renders refused requests as ResponseEntityList."""

    async def endpoint(request: Request) -> Response:
        scope = scope_of(request)
        caller = authenticate(request, scope)
        if isinstance(caller, AuthFailure):
            return p2p_auth_failure(caller, scope)
        try:
            return await handler(request, caller)
        except BadRequest as exc:
            return p2p_error(exc)

    return endpoint


def _api(request: Request) -> EntityApi:
    return api_of_path(request.url.path)


def _scope(verb: str) -> Callable[[Request], str]:
    return lambda request: f"{_api(request).scope_name}.{verb}"


def _schema_errors(api: EntityApi, body: Any, *, array: bool) -> JSONResponse | None:
    found = schemas.problems("p2p", api.schema, body, array=array)
    if not found:
        return None
    errors = []
    for problem in found:
        position = problem.path.split("/", 1)[0]
        item = body[int(position)] if array and position.isdigit() else body
        code = item.get("externalCode") if isinstance(item, dict) else None
        errors.append(
            error_entry(
                "SCHEMA_VALIDATION_ERROR",
                problem.message,
                external_code=code,
                info=problem.path or None,
            )
        )
    return entity_errors(400, errors)


def _store(
    request: Request,
    tenant: Tenant,
    api: EntityApi,
    bodies: list[dict[str, Any]],
    operation: str,
    caller: Caller,
) -> RequestRecord:
    state = sandbox(request)
    now = state.clock.utcnow()
    received = state.clock.now()
    request_id = str(uuid.uuid4())
    items = []
    for body in bodies:
        code = str(body["externalCode"])
        previous = tenant.records[api.path].get(code)
        body["lastUpdated"] = iso(now)
        if api.path == "vendors":
            # buvid is Basware's own vendor id: kept across updates, never taken from the client.
            body["buvid"] = previous.body.get("buvid") if previous else uuid.uuid4().hex
        record = StoredRecord(
            external_code=code,
            body=body,
            content_hash=content_hash(body),
            received_at=received,
            request_id=request_id,
        )
        tenant.records[api.path][code] = record
        items.append(RequestItem(external_code=code, record=record))
    entry = RequestRecord(
        request_id=request_id,
        api=api.path,
        entity_type=api.entity_type,
        operation_type=operation,
        changed_by=caller.client_id,
        received_at=received,
        last_updated=now,
        items=items,
    )
    tenant.requests[request_id] = entry
    state.pipeline.submit(tenant, request_id=request_id)
    return entry


async def post_records(request: Request, caller: Caller) -> Response:
    api = _api(request)
    body = await read_json(request, sandbox(request).config.max_request_bytes)
    if not isinstance(body, list) or not body:
        raise BadRequest("SCHEMA_VALIDATION_ERROR", "body must be a non-empty JSON array")
    if len(body) > api.batch_limit:
        raise BadRequest(
            "PARAMETER_VALIDATION_ERROR",
            f"at most {api.batch_limit} records per request, got {len(body)}",
        )
    refused = _schema_errors(api, body, array=True)
    if refused is not None:
        return refused
    entry = _store(request, caller.tenant, api, body, "POST", caller)
    return JSONResponse(body, headers={REQUEST_ID_HEADER: entry.request_id})


def _updated_after(record: StoredRecord, after: datetime | None) -> bool:
    return (
        after is None
        or datetime.fromisoformat(record.body["lastUpdated"].replace("Z", "+00:00")) > after
    )


async def list_records(request: Request, caller: Caller) -> Response:
    api = _api(request)
    size = page_size(request, api.page_size, api.page_size)
    after = parse_instant(request.query_params.get("lastUpdated"), "lastUpdated")
    company = request.query_params.get("companyCode") or None
    parent: str | None = None
    if api.parent_filter is not None:
        parent = request.query_params.get(api.parent_filter)
        if not parent:
            raise BadRequest("PARAMETER_VALIDATION_ERROR", f"{api.parent_filter} is required")

    def select() -> list[StoredRecord]:
        selected = [
            r
            for r in caller.tenant.records[api.path].values()
            if _updated_after(r, after)
            and (company is None or company in _company_codes(r.body))
            and (parent is None or r.body.get(api.parent_filter or "") == parent)
        ]
        return sorted(selected, key=lambda r: (r.body["lastUpdated"], r.external_code))

    chunk, continuation = page(request, select, size)
    if not chunk:
        return Response(status_code=404)
    headers = {CONTINUATION_HEADER: continuation} if continuation else {}
    return JSONResponse({api.wrapper: [r.body for r in chunk]}, headers=headers)


def _company_codes(body: dict[str, Any]) -> set[str]:
    listed = {c.get("companyCode") for c in body.get("companies") or [] if isinstance(c, dict)}
    return {str(c) for c in listed | {body.get("companyCode")} if c}


async def get_record(request: Request, caller: Caller) -> Response:
    record = caller.tenant.records[_api(request).path].get(request.path_params["external_code"])
    if record is None:
        return Response(status_code=404)
    return JSONResponse(record.body)


async def patch_record(request: Request, caller: Caller) -> Response:
    api = _api(request)
    code = request.path_params["external_code"]
    record = caller.tenant.records[api.path].get(code)
    if record is None:
        return Response(status_code=404)
    patch = await read_json(request, sandbox(request).config.max_request_bytes)
    if not isinstance(patch, dict):
        raise BadRequest("SCHEMA_VALIDATION_ERROR", "body must be a JSON object")
    if patch.get("externalCode") not in (None, code):
        raise BadRequest("EXTERNAL_CODE_MISMATCH", "externalCode differs from the one in the path")
    # Basware declares the full entity (required fields included) as the PATCH body.
    refused = _schema_errors(api, patch, array=False)
    if refused is not None:
        return refused
    # null means "not sent": a PATCH can change fields but never clear them.
    merged = {**record.body, **{k: v for k, v in patch.items() if v is not None}}
    if api.path == "matchingOrderLines" and patch.get("goodsReceipts"):
        # Patching a line adds receipts to it (a receipt with a known externalCode replaces it).
        receipts = {gr["externalCode"]: gr for gr in record.body.get("goodsReceipts") or []}
        receipts.update({gr["externalCode"]: gr for gr in patch["goodsReceipts"]})
        merged["goodsReceipts"] = list(receipts.values())
    merged.pop("lastUpdated", None)
    merged.pop("buvid", None)
    entry = _store(request, caller.tenant, api, [merged], "PATCH", caller)
    return JSONResponse(merged, headers={REQUEST_ID_HEADER: entry.request_id})


async def delete_records(request: Request, caller: Caller) -> Response:
    api = _api(request)
    body = await read_json(request, sandbox(request).config.max_request_bytes)
    found = schemas.problems("p2p", "DeleteRequest", body)
    if found:
        raise BadRequest("SCHEMA_VALIDATION_ERROR", found[0].message)
    store = caller.tenant.records[api.path]
    # Deleting touches only the API layer, never what P2P already holds.
    if body.get("externalCode"):
        if store.pop(body["externalCode"], None) is None:
            return Response(status_code=404)
        return JSONResponse({"statusApiLink": None, "taskName": None, "taskStatus": "Completed"})
    after = parse_instant(body.get("lastUpdated"), "lastUpdated")
    if after is None:
        raise BadRequest("PARAMETER_VALIDATION_ERROR", "externalCode or lastUpdated is required")
    doomed = [code for code, record in store.items() if _updated_after(record, after)]
    for code in doomed:
        del store[code]
    task_name = f"delete-{api.path}-{uuid.uuid4().hex[:12]}"
    caller.tenant.deletions[task_name] = len(doomed)
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "statusApiLink": f"{base}{api.route}/deleteTasks/{task_name}",
            "taskName": task_name,
            "taskStatus": "InProgress",
        },
        status_code=202,
    )


async def delete_task(request: Request, caller: Caller) -> Response:
    name = request.path_params["task_name"]
    count = caller.tenant.deletions.get(name)
    if count is None:
        return Response(status_code=404)
    return JSONResponse({"taskName": name, "taskStatus": "Completed", "recordCount": count})


# --- requestStatus ---


def _request_status_scope(verb: str) -> Callable[[Request], str]:
    return lambda request: f"requestStatus.{verb}"


def _truthy(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _view(entry: RequestRecord, system: str | None, ignore_successful: bool) -> dict[str, Any]:
    view = entry.view(ignore_successful_items=ignore_successful)
    if system is not None:
        view["systems"] = [s for s in view["systems"] if s["system"] == system]
    return view


async def get_request_status(request: Request, caller: Caller) -> Response:
    entry = caller.tenant.requests.get(request.path_params["request_id"])
    if entry is None:
        return Response(status_code=404)
    system = request.query_params.get("system")
    ignore = _truthy(request.query_params.get("ignoreSuccessfulItems"))
    return JSONResponse({"requestStatus": [_view(entry, system, ignore)]})


async def list_request_status(request: Request, caller: Caller) -> Response:
    params = request.query_params
    entity_type, system = params.get("entityType"), params.get("system")
    # Without entityType or system the list holds only failed requests.
    status = params.get("status") or (None if entity_type or system else "Error")
    after = parse_instant(params.get("lastUpdated"), "lastUpdated")
    size = page_size(request, 500, 500)

    def select() -> list[RequestRecord]:
        return [
            e
            for e in caller.tenant.requests.values()
            if (status is None or e.status == status)
            and (entity_type is None or e.entity_type == entity_type)
            and (system is None or system == "P2P")
            and (after is None or e.last_updated > after)
        ]

    chunk, continuation = page(request, select, size)
    if not chunk:
        return Response(status_code=404)
    ignore = _truthy(params.get("ignoreSuccessfullItems"))
    headers = {CONTINUATION_HEADER: continuation} if continuation else {}
    return JSONResponse(
        {"requestStatus": [_view(e, system, ignore) for e in chunk]}, headers=headers
    )


async def acknowledge_request_status(request: Request, caller: Caller) -> Response:
    body = await read_json(request, sandbox(request).config.max_request_bytes)
    found = schemas.problems("p2p", "ProcessingStatusGetBatchRequest", body)
    if found or not body.get("requestIds"):
        raise BadRequest(
            "SCHEMA_VALIDATION_ERROR", found[0].message if found else "requestIds is required"
        )
    entries = [caller.tenant.requests.get(rid) for rid in body["requestIds"]]
    if any(e is None for e in entries):
        return Response(status_code=404)
    moves = {"Success": "AcknowledgedSuccess", "Error": "AcknowledgedError"}
    if any(e is not None and e.status not in moves for e in entries):
        return Response(status_code=405)
    state = sandbox(request)
    for entry in entries:
        assert entry is not None
        entry.status = moves[entry.status]
        entry.last_updated = state.clock.utcnow()
        state.notifier.complete_tasks(caller.tenant, entry.request_id, "RequestStatus")
    return JSONResponse("Acknowledged")


ROUTES: list[Route] = [
    Route(
        "/v1/requestStatus",
        guarded(_request_status_scope("read"), list_request_status),
        methods=["GET"],
    ),
    Route(
        "/v1/requestStatus/acknowledge",
        guarded(_request_status_scope("write"), acknowledge_request_status),
        methods=["POST"],
    ),
    Route(
        "/v1/requestStatus/{request_id}",
        guarded(_request_status_scope("read"), get_request_status),
        methods=["GET"],
    ),
]
for _entity_api in ENTITY_APIS.values():
    ROUTES += [
        Route(_entity_api.route, guarded(_scope("write"), post_records), methods=["POST"]),
        Route(_entity_api.route, guarded(_scope("read"), list_records), methods=["GET"]),
        Route(_entity_api.route, guarded(_scope("delete"), delete_records), methods=["DELETE"]),
        Route(
            f"{_entity_api.route}/deleteTasks/{{task_name}}",
            guarded(_scope("delete"), delete_task),
            methods=["GET"],
        ),
        Route(
            f"{_entity_api.route}/{{external_code}}",
            guarded(_scope("read"), get_record),
            methods=["GET"],
        ),
        Route(
            f"{_entity_api.route}/{{external_code}}",
            guarded(_scope("write"), patch_record),
            methods=["PATCH"],
        ),
    ]
