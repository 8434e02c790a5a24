"""Visma Connect's token endpoint: client credentials with tenant_id, no refresh token.

Client authentication in the form body (as the docs show) or with HTTP Basic (as some
clients do). Errors use IdentityServer's `{"error": ...}` shape.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
import urllib.parse

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from visma_sandbox.requestlog import LoggedRequest, kept_headers
from visma_sandbox.responses import json_response
from visma_sandbox.state import SandboxState

TOKEN_PATH = "/connect/token"


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


class TokenError(BaseModel):
    error: str
    error_description: str | None = None


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # Both parts are form-urlencoded before joining (docs/visma-net.md §2.1).
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


class ConnectTokenEndpoint:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def handle(self, request: Request) -> Response:
        arrived = time.time()
        fault = self.state.faults.apply(request.method, TOKEN_PATH)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        tenant_id = client_id = company_id = None
        if fault.status is not None:
            response = json_response(TokenError(error="server_error"), fault.status)
        else:
            # A urlencoded body parsed by hand: Starlette's form parser needs python-multipart.
            body = (await request.body()).decode("utf-8", errors="replace")
            fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
            client_id = fields.get("client_id")
            tenant_id = fields.get("tenant_id")
            response, company_id = self._issue(request, fields)
        self.state.log.add(
            LoggedRequest(
                seq=self.state.log.next_seq(),
                at=arrived,
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                route="token",
                status=response.status_code,
                company_id=company_id,
                tenant_id=tenant_id,
                client_id=client_id,
                headers=kept_headers(request.headers),
            )
        )
        return response

    def _issue(self, request: Request, fields: dict[str, str]) -> tuple[Response, str | None]:
        state = self.state
        basic = _basic_credentials(request.headers.get("authorization", ""))
        client_id, secret = basic or (fields.get("client_id", ""), fields.get("client_secret", ""))
        if fields.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type"), None
        client = state.clients.get(client_id)
        if client is None or not hmac.compare_digest(
            client.client_secret.get_secret_value().encode(), secret.encode()
        ):
            return _error(401 if basic else 400, "invalid_client"), None
        requested = fields.get("scope", "").split()
        scopes = frozenset(requested or client.allowed_scopes)
        if not scopes <= set(client.allowed_scopes):
            return _error(400, "invalid_scope"), None
        tenant_id = fields.get("tenant_id", "")
        if not tenant_id:
            return _error(400, "invalid_request", "tenant_id is required for this API."), None
        found = state.tenant(tenant_id)
        if found is None:
            return _error(400, "invalid_tenant"), None
        company, licensed = found
        if client.approved_tenants is not None and tenant_id not in client.approved_tenants:
            return _error(400, "invalid_grant", "The tenant has not approved this client."), None
        lifetime = state.settings.token_lifetime_seconds
        token = state.tokens.issue(
            client_id=client_id,
            tenant_id=tenant_id,
            company_id=company.company_id if licensed else None,
            scopes=scopes,
            lifetime=lifetime,
        )
        # expires_in is whole seconds, rounded down so a client never trusts a dead token.
        body = TokenResponse(
            access_token=token, expires_in=int(lifetime), scope=" ".join(sorted(scopes))
        )
        return json_response(body, 200, {"Cache-Control": "no-store"}), company.company_id


def _error(status: int, error: str, description: str | None = None) -> Response:
    return json_response(TokenError(error=error, error_description=description), status)
