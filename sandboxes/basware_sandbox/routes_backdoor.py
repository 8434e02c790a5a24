"""The sandbox's back door under /_sandbox: no auth, not part of Basware's API.

Tests and the local stack use it to provision API clients, drive invoices through approval
(which fires webhooks), inject faults and latency, move the clock, read what landed, and
change records behind the client's back (edit or delete one, upload an invoice again).
Every route calls the same SandboxState methods an in-process test would call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field, RootModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from basware_sandbox import documents
from basware_sandbox.config import ApiClient, Environment, Region
from basware_sandbox.faults import FaultRule
from basware_sandbox.http_common import sandbox
from basware_sandbox.records import AccountingDocument, StoredDocument

M = TypeVar("M", bound=BaseModel)


class LatencySetting(BaseModel):
    ms: int = Field(ge=0)
    region: Region | None = None
    environment: Environment | None = None


class ClockMove(BaseModel):
    advance_seconds: float


class ProcessingSetting(BaseModel):
    paused: bool


class Approval(BaseModel):
    prebook: bool = False


class Rejection(BaseModel):
    reason: str = "Rejected in approval"


class StatusMove(BaseModel):
    processing_status: str


class RecordEdit(RootModel[dict[str, Any]]):
    """Fields of a record to overwrite, by Basware's JSON names."""


class BadInput(Exception):
    pass


async def _parse(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate_json((await request.body()) or b"{}")
    except ValidationError as exc:
        raise BadInput(str(exc)) from exc


Endpoint = Callable[[Request], Awaitable[Response]]


def _safe(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except documents.TransitionRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)

    return endpoint


async def hosts(request: Request) -> Response:
    state = sandbox(request)
    ports = {h.name: p for p, h in state.port_hosts.items()}
    return JSONResponse(
        [
            {**h.model_dump(mode="json"), "issuer": h.issuer, "port": ports.get(h.name)}
            for h in state.config.hosts
        ]
    )


async def add_client(request: Request) -> Response:
    client = await _parse(request, ApiClient)
    sandbox(request).register_client(client)
    return JSONResponse({"clientId": client.client_id, "bwcid": client.bwcid}, status_code=201)


async def records(request: Request) -> Response:
    p = request.path_params
    found = sandbox(request).records(
        Region(p["region"]),
        p["bwcid"],
        p["api"],
        environment=request.query_params.get("environment", Environment.PRODUCTION),
        accepted=request.query_params.get("accepted") == "true",
    )
    return JSONResponse(found)


async def edit_record(request: Request) -> Response:
    p = request.path_params
    fields = await _parse(request, RecordEdit)
    body = sandbox(request).edit_record(
        Region(p["region"]),
        p["bwcid"],
        p["api"],
        p["external_code"],
        fields.root,
        environment=request.query_params.get("environment", Environment.PRODUCTION),
    )
    return JSONResponse(body)


async def delete_record(request: Request) -> Response:
    p = request.path_params
    sandbox(request).delete_record(
        Region(p["region"]),
        p["bwcid"],
        p["api"],
        p["external_code"],
        environment=request.query_params.get("environment", Environment.PRODUCTION),
    )
    return Response(status_code=204)


async def request_statuses(request: Request) -> Response:
    p = request.path_params
    env = request.query_params.get("environment", Environment.PRODUCTION)
    tenant = sandbox(request).tenant_of(Region(p["region"]), p["bwcid"], env)
    return JSONResponse([r.view() for r in tenant.requests.values()])


def _document_view(stored: StoredDocument) -> dict[str, object]:
    return {
        "workflow": stored.workflow.value,
        "exceptions": stored.exceptions,
        "publicStatus": documents.public_status(stored),
        "document": stored.document.to_json(),
    }


async def list_documents(request: Request) -> Response:
    return JSONResponse([_document_view(d) for d in sandbox(request).documents()])


async def inject_document(request: Request) -> Response:
    p = request.path_params
    state = sandbox(request)
    document = await _parse(request, AccountingDocument)
    env = request.query_params.get("environment", Environment.PRODUCTION)
    stored = documents.inject(
        state, state.tenant_of(Region(p["region"]), p["bwcid"], env), document
    )
    return JSONResponse(_document_view(stored), status_code=201)


async def approve(request: Request) -> Response:
    setting = await _parse(request, Approval)
    stored = documents.approve(
        sandbox(request), request.path_params["invoice_id"], prebook=setting.prebook
    )
    return JSONResponse(_document_view(stored))


async def reject(request: Request) -> Response:
    setting = await _parse(request, Rejection)
    stored = documents.reject(sandbox(request), request.path_params["invoice_id"], setting.reason)
    return JSONResponse(_document_view(stored))


async def pay(request: Request) -> Response:
    stored = documents.mark_paid(sandbox(request), request.path_params["invoice_id"])
    return JSONResponse(_document_view(stored))


async def advance(request: Request) -> Response:
    setting = await _parse(request, StatusMove)
    stored = documents.advance(
        sandbox(request), request.path_params["invoice_id"], setting.processing_status
    )
    return JSONResponse(_document_view(stored))


async def upload_again(request: Request) -> Response:
    stored = documents.upload_again(sandbox(request), request.path_params["invoice_id"])
    return JSONResponse(_document_view(stored), status_code=201)


async def add_fault(request: Request) -> Response:
    rule = sandbox(request).add_fault(await _parse(request, FaultRule))
    return JSONResponse(rule.model_dump(mode="json"), status_code=201)


async def list_faults(request: Request) -> Response:
    return JSONResponse([r.model_dump(mode="json") for r in sandbox(request).faults.rules])


async def clear_faults(request: Request) -> Response:
    sandbox(request).faults.remove(request.path_params.get("fault_id"))
    return Response(status_code=204)


async def set_latency(request: Request) -> Response:
    setting = await _parse(request, LatencySetting)
    sandbox(request).set_latency(setting.ms, region=setting.region, environment=setting.environment)
    return Response(status_code=204)


async def counters(request: Request) -> Response:
    return JSONResponse(dict(sandbox(request).counters))


async def request_log(request: Request) -> Response:
    since = int(request.query_params.get("since", "0"))
    entries = [e.model_dump(mode="json") for e in sandbox(request).request_log if e.seq > since]
    return JSONResponse(entries)


async def webhook_log(request: Request) -> Response:
    return JSONResponse([a.model_dump(mode="json") for a in sandbox(request).webhook_log])


async def move_clock(request: Request) -> Response:
    move = await _parse(request, ClockMove)
    sandbox(request).clock.advance(move.advance_seconds)
    return Response(status_code=204)


async def processing(request: Request) -> Response:
    setting = await _parse(request, ProcessingSetting)
    state = sandbox(request)
    if setting.paused:
        state.pause_processing()
    else:
        state.resume_processing()
    return Response(status_code=204)


async def drain(request: Request) -> Response:
    await sandbox(request).drain()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    sandbox(request).reset()
    return Response(status_code=204)


_ROUTES: list[tuple[str, Endpoint, str]] = [
    ("/hosts", hosts, "GET"),
    ("/clients", add_client, "POST"),
    ("/tenants/{region}/{bwcid}/records/{api}", records, "GET"),
    ("/tenants/{region}/{bwcid}/records/{api}/{external_code}", edit_record, "PATCH"),
    ("/tenants/{region}/{bwcid}/records/{api}/{external_code}", delete_record, "DELETE"),
    ("/tenants/{region}/{bwcid}/requests", request_statuses, "GET"),
    ("/documents", list_documents, "GET"),
    ("/tenants/{region}/{bwcid}/documents", inject_document, "POST"),
    ("/documents/{invoice_id}/approve", approve, "POST"),
    ("/documents/{invoice_id}/reject", reject, "POST"),
    ("/documents/{invoice_id}/pay", pay, "POST"),
    ("/documents/{invoice_id}/advance", advance, "POST"),
    ("/documents/{invoice_id}/upload-again", upload_again, "POST"),
    ("/faults", add_fault, "POST"),
    ("/faults", list_faults, "GET"),
    ("/faults", clear_faults, "DELETE"),
    ("/faults/{fault_id}", clear_faults, "DELETE"),
    ("/latency", set_latency, "PUT"),
    ("/counters", counters, "GET"),
    ("/log", request_log, "GET"),
    ("/webhooks", webhook_log, "GET"),
    ("/clock", move_clock, "POST"),
    ("/processing", processing, "POST"),
    ("/drain", drain, "POST"),
    ("/reset", reset, "POST"),
]
ROUTES = [
    Route(f"/_sandbox{path}", _safe(handler), methods=[method]) for path, handler, method in _ROUTES
]
