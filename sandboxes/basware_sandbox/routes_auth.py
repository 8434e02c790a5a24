"""POST /v1/tokens and the .well-known discovery documents (Basware's authentication API)."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from basware_sandbox.http_common import basic_client, sandbox, virtual_host
from basware_sandbox.tokens import KNOWN_SCOPES


def _invalid_request(description: str, error: str = "invalid_request") -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


async def issue_token(request: Request) -> Response:
    state = sandbox(request)
    host = virtual_host(request)
    authorization = request.headers.get("authorization")
    if authorization is None:
        detail = [
            {
                "loc": ["header", "authorization"],
                "msg": "field required",
                "type": "value_error.missing",
            }
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    grant_type = form.get("grant_type", [""])[0]
    scope = " ".join(form.get("scope", [""])[0].split())
    if not grant_type:
        return _invalid_request("grant_type field required")
    if grant_type != "client_credentials":
        return _invalid_request(
            f"grant_type {grant_type} is not supported", "unsupported_grant_type"
        )
    if not scope:
        return _invalid_request("scope field required")
    caller = basic_client(state, host, authorization)
    if caller is None:
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    client = state.client(host, caller[0])
    assert client is not None
    requested = scope.split()
    allowed = (
        KNOWN_SCOPES if client.allowed_scopes is None else set(client.allowed_scopes) & KNOWN_SCOPES
    )
    refused = [s for s in requested if s not in allowed]
    if refused:
        return _invalid_request(f"scope not allowed: {' '.join(refused)}", "invalid_scope")
    lifetime = state.config.token_lifetime_seconds
    token = state.issuer.issue(
        host, client.client_id, client.bwcid, scope, now=int(state.clock.now()), lifetime=lifetime
    )
    return JSONResponse(
        {"access_token": token, "scope": scope, "expires_in": lifetime, "token_type": "Bearer"},
        headers={"Cache-Control": "no-store"},
    )


async def jwks(request: Request) -> Response:
    return JSONResponse(sandbox(request).issuer.jwks())


async def openid_configuration(request: Request) -> Response:
    issuer = virtual_host(request).issuer
    return JSONResponse({"issuer": issuer, "jwks_uri": f"{issuer}/.well-known/jwks.json"})


ROUTES = [
    Route("/v1/tokens", issue_token, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
]
