"""Pieces every route shares: the caller's host and tenant, auth, error bodies, paging."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from basware_sandbox.config import VirtualHost
from basware_sandbox.state import SandboxState, Tenant

T = TypeVar("T")

JSON_CONTENT_TYPES = ("application/json", "text/json", "application/json-patch+json")
CONTINUATION_HEADER = "x-amz-meta-continuationtoken"
REQUEST_ID_HEADER = "x-amzn-RequestId"
# Listings whose next page may still be asked for; the oldest is forgotten beyond this.
MAX_LISTINGS = 64


def sandbox(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def virtual_host(request: Request) -> VirtualHost:
    host: VirtualHost = request.scope["basware.host"]
    return host


class BadRequest(Exception):
    """A request the API layer refuses; rendered by the route's API family."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, external_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.external_code = external_code


def entity_errors(
    status: int, errors: list[dict[str, Any]], *, request_id: str | None = None
) -> JSONResponse:
    """Basware's ResponseEntityList body."""
    body = {"requestId": request_id or str(uuid.uuid4()), "hasErrors": True, "errors": errors}
    return JSONResponse(body, status_code=status)


def error_entry(
    code: str,
    message: str,
    *,
    kind: str = "VALIDATION",
    external_code: str | None = None,
    info: str | None = None,
) -> dict[str, Any]:
    return {
        "externalCode": external_code,
        "type": kind,
        "code": code,
        "message": message,
        "info": info,
    }


def p2p_error(exc: BadRequest) -> JSONResponse:
    kind = {"CONFLICT_IN_POST": "BUSINESS", "METHOD_NOT_ALLOWED": "BUSINESS"}.get(
        exc.code, "VALIDATION"
    )
    return entity_errors(
        exc.status, [error_entry(exc.code, exc.message, kind=kind, external_code=exc.external_code)]
    )


# --- auth ---


class AuthFailure(StrEnum):
    MISSING = "missing"
    INVALID = "invalid"
    BOTH = "both"  # bearer and basic at once (SmartPDF refuses that)
    SCOPE = "scope"


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    client_id: str


def _basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def basic_client(state: SandboxState, host: VirtualHost, header: str) -> tuple[str, str] | None:
    """(client id, bwcid) when a Basic header holds a client's id and secret on this host."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    pair = _basic(value.strip())
    if pair is None:
        return None
    client = state.client(host, pair[0])
    if client is None or not hmac.compare_digest(client.client_secret.get_secret_value(), pair[1]):
        return None
    return client.client_id, client.bwcid


def authenticate(request: Request, scope: str) -> Caller | AuthFailure:
    """A Bearer token this host issued and that grants `scope`, or a client's Basic credentials."""
    state = sandbox(request)
    host = virtual_host(request)
    headers = request.headers.getlist("authorization")
    if not headers:
        return AuthFailure.MISSING
    if len(headers) > 1:
        return AuthFailure.BOTH
    scheme, _, value = headers[0].partition(" ")
    if scheme.lower() == "bearer":
        claims = state.issuer.verify(value.strip(), host, now=int(state.clock.now()))
        if claims is None:
            return AuthFailure.INVALID
        if scope not in claims.scopes:
            return AuthFailure.SCOPE
        return Caller(tenant=state.tenant(host, claims.bwcid), client_id=claims.sub)
    basic = basic_client(state, host, headers[0])
    if basic is None:
        return AuthFailure.INVALID
    return Caller(tenant=state.tenant(host, basic[1]), client_id=basic[0])


def p2p_auth_failure(failure: AuthFailure, scope: str) -> Response:
    if failure is AuthFailure.SCOPE:
        return entity_errors(
            403,
            [
                error_entry(
                    "ACCESS_TOKEN_VALIDATION_ERROR",
                    f"token does not grant {scope}",
                    kind="SECURITY",
                )
            ],
        )
    return Response(status_code=401)


# --- bodies ---


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest("PARAMETER_VALIDATION_ERROR", f"request is larger than {limit} bytes")
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in JSON_CONTENT_TYPES and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise BadRequest(
            "PARAMETER_VALIDATION_ERROR", f"unsupported content type {media}", status=415
        )
    raw = await request.body()
    if len(raw) > limit:
        raise BadRequest("PARAMETER_VALIDATION_ERROR", f"request is larger than {limit} bytes")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest("SCHEMA_VALIDATION_ERROR", f"body is not JSON: {exc}") from exc


# --- listing ---


def parse_instant(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest("PARAMETER_VALIDATION_ERROR", f"{name} is not a date-time") from exc
    if moment.tzinfo is None:
        # Basware does not say which zone a bare timestamp means; the sandbox reads it as UTC.
        moment = moment.replace(tzinfo=UTC)
    return moment


def page_size(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("pageSize")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest("PARAMETER_VALIDATION_ERROR", f"pageSize must be 1..{maximum}")
    return int(raw)


def _fingerprint(request: Request) -> str:
    query = sorted((k.lower(), v) for k, v in request.query_params.multi_items())
    return hashlib.sha256(json.dumps(query).encode()).hexdigest()[:16]


def page(request: Request, select: Callable[[], list[T]], size: int) -> tuple[list[T], str | None]:
    """One page of what `select` lists and the continuation token of the next, if any.

    A listing is selected once, at its first page, and its token names that selection: the
    pages that follow are cut from it (records show their content as it is then), so a long
    list costs one selection, not one per page. A token is only good with the same query
    parameters it was issued for; one whose selection was forgotten selects again.
    """
    token = request.headers.get(CONTINUATION_HEADER)
    offset = 0
    listing: str | None = None
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            offset, fingerprint = int(decoded["o"]), str(decoded["q"])
            listing = decoded.get("s")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise BadRequest(
                "PARAMETER_VALIDATION_ERROR", "continuation token is not valid"
            ) from exc
        if fingerprint != _fingerprint(request):
            raise BadRequest(
                "PARAMETER_VALIDATION_ERROR",
                "continuation token was issued for other query parameters",
            )
    listings = sandbox(request).listings
    items: list[T] | None = listings.get(listing) if listing else None
    if items is None or listing is None:
        items = select()
        listing = uuid.uuid4().hex
    chunk = items[offset : offset + size]
    if offset + size >= len(items):
        listings.pop(listing, None)
        return chunk, None
    listings[listing] = items
    while len(listings) > MAX_LISTINGS:
        listings.pop(next(iter(listings)))
    next_token = json.dumps({"o": offset + size, "q": _fingerprint(request), "s": listing})
    return chunk, base64.urlsafe_b64encode(next_token.encode()).decode()
