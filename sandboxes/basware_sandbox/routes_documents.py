"""/v1/accountingDocuments: lists and single invoices through a 302, and the ERP's responses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from basware_sandbox import documents, schemas
from basware_sandbox.http_common import (
    REQUEST_ID_HEADER,
    BadRequest,
    Caller,
    entity_errors,
    error_entry,
    page,
    page_size,
    parse_instant,
    read_json,
    sandbox,
)
from basware_sandbox.records import (
    AccountingDocument,
    RequestItem,
    RequestRecord,
    StoredDocument,
)
from basware_sandbox.routes_p2p import guarded
from basware_sandbox.s3 import park_export
from basware_sandbox.state import Tenant


def _scope(verb: str) -> Callable[[Request], str]:
    return lambda request: f"accountingDocuments.{verb}"


def _redirect(request: Request, payload: dict[str, Any], continuation: str | None) -> Response:
    location = park_export(request, json.dumps(payload).encode(), continuation)
    return RedirectResponse(location, status_code=302)


async def list_documents(request: Request, caller: Caller) -> Response:
    params = request.query_params
    status = params.get("ProcessingStatus")
    company = params.get("companyCode") or None
    mode = params.get("p2pProcessingMode") or "Standard"
    after = parse_instant(params.get("lastUpdated"), "lastUpdated")
    size = page_size(request, 100, 100)
    if mode != "Standard":
        # The sandbox has no InvoiceEnrichment flow, so it has no such documents.
        return Response(status_code=404)

    def select() -> list[AccountingDocument]:
        return sorted(
            (
                s.document
                for s in caller.tenant.documents.values()
                # Invoices still in approval (New) are not offered to the ERP unless asked for.
                if (
                    s.document.processing_status == status
                    if status
                    else s.document.processing_status != "New"
                )
                and (company is None or s.document.company_code == company)
                and (after is None or s.document.last_updated > after)
            ),
            key=lambda d: (d.last_updated, d.invoice_id),
        )

    chunk, continuation = page(request, select, size)
    if not chunk:
        return Response(status_code=404)
    return _redirect(request, {"accountingDocuments": [d.to_json() for d in chunk]}, continuation)


def _document(caller: Caller, request: Request) -> StoredDocument | None:
    return caller.tenant.documents.get(request.path_params["invoice_id"])


async def get_document(request: Request, caller: Caller) -> Response:
    stored = _document(caller, request)
    if stored is None:
        return Response(status_code=404)
    return _redirect(request, {"accountingDocuments": [stored.document.to_json()]}, None)


async def acknowledge(request: Request, caller: Caller) -> Response:
    stored = _document(caller, request)
    if stored is None:
        return Response(status_code=404)
    try:
        documents.acknowledge(sandbox(request), caller.tenant, stored)
    except documents.TransitionRefused:
        return Response(status_code=405)
    return JSONResponse("Acknowledged")


def _response_request(
    request: Request, tenant: Tenant, caller: Caller, entity_type: str, body: dict[str, Any]
) -> str:
    """Each response to an invoice is also a requestStatus entry whose parent is the invoice."""
    state = sandbox(request)
    request_id = str(uuid.uuid4())
    tenant.requests[request_id] = RequestRecord(
        request_id=request_id,
        api=None,
        entity_type=entity_type,
        operation_type="POST",
        changed_by=caller.client_id,
        received_at=state.clock.now(),
        last_updated=state.clock.utcnow(),
        items=[
            RequestItem(
                external_code=str(body["externalCode"]),
                parent_external_code=request.path_params["invoice_id"],
            )
        ],
    )
    state.pipeline.submit(tenant, request_id=request_id)
    return request_id


def _responder(
    schema: str, entity_type: str, conflict_status: int
) -> Callable[[Request, Caller], Any]:
    async def post_response(request: Request, caller: Caller) -> Response:
        state = sandbox(request)
        body = await read_json(request, state.config.max_request_bytes)
        found = schemas.problems("p2p", schema, body)
        if found:
            return entity_errors(
                400,
                [
                    error_entry("SCHEMA_VALIDATION_ERROR", p.message, info=p.path or None)
                    for p in found
                ],
            )
        stored = _document(caller, request)
        if stored is None:
            return Response(status_code=404)
        try:
            if entity_type == "TransferResponse":
                documents.record_transfer(state, caller.tenant, stored, body)
            elif entity_type == "PrebookResponse":
                documents.record_prebook(state, caller.tenant, stored, body)
            else:
                documents.record_payment(state, caller.tenant, stored, body, state.clock.utcnow())
        except documents.TransitionRefused as exc:
            code = "CONFLICT_IN_POST" if conflict_status == 409 else "METHOD_NOT_ALLOWED"
            raise BadRequest(
                code, str(exc), status=conflict_status, external_code=body["externalCode"]
            ) from exc
        state.notifier.complete_tasks(
            caller.tenant, stored.document.invoice_id, "AccountingDocuments"
        )
        request_id = _response_request(request, caller.tenant, caller, entity_type, body)
        return JSONResponse(body, headers={REQUEST_ID_HEADER: request_id})

    return post_response


async def invoice_status(request: Request, caller: Caller) -> Response:
    params = request.query_params
    missing = [p for p in ("companyCode", "invoiceNumber", "invoiceDate") if not params.get(p)]
    if missing:
        raise BadRequest("PARAMETER_VALIDATION_ERROR", f"required: {', '.join(missing)}")
    invoice_date = parse_instant(params["invoiceDate"], "invoiceDate")
    assert invoice_date is not None
    gross = params.get("grossSum")
    if not sandbox(request).config.invoice_status_enabled:
        return Response(status_code=404)
    found = [
        s
        for s in caller.tenant.documents.values()
        if s.document.company_code == params["companyCode"]
        and s.document.invoice_number == params["invoiceNumber"]
        and _same_day(s.document.invoice_date, invoice_date)
        and (gross is None or s.document.gross_sum == float(gross))
    ]
    if not found:
        return Response(status_code=404)
    return JSONResponse([_status_entry(s) for s in found])


def _status_entry(stored: StoredDocument) -> dict[str, Any]:
    document = stored.document.to_json()
    entry = {
        "invoiceId": document["invoiceId"],
        "status": documents.public_status(stored),
        "processingStatus": document["processingStatus"],
        "lastUpdated": document["lastUpdated"],
    }
    if "disputeInfo" in document:
        entry["disputeInfo"] = document["disputeInfo"]
    return entry


def _same_day(left: datetime | None, right: datetime) -> bool:
    return left is not None and left.date() == right.date()


ROUTES = [
    Route("/v1/accountingDocuments", guarded(_scope("read"), list_documents), methods=["GET"]),
    Route(
        "/v1/accountingDocuments/status", guarded(_scope("read"), invoice_status), methods=["GET"]
    ),
    Route(
        "/v1/accountingDocuments/{invoice_id}",
        guarded(_scope("read"), get_document),
        methods=["GET"],
    ),
    Route(
        "/v1/accountingDocuments/{invoice_id}/acknowledge",
        guarded(_scope("write"), acknowledge),
        methods=["POST"],
    ),
    Route(
        "/v1/accountingDocuments/{invoice_id}/transferResponses",
        guarded(_scope("write"), _responder("TransferResponseEntity", "TransferResponse", 400)),
        methods=["POST"],
    ),
    Route(
        "/v1/accountingDocuments/{invoice_id}/prebookResponses",
        guarded(_scope("write"), _responder("PrebookResponseEntity", "PrebookResponse", 409)),
        methods=["POST"],
    ),
    Route(
        "/v1/accountingDocuments/{invoice_id}/paymentResponses",
        guarded(_scope("write"), _responder("PaymentResponseEntity", "PaymentResponse", 409)),
        methods=["POST"],
    ),
]
