"""The sandbox as one ASGI app: virtual-host resolution, faults, latency and the request log
wrap Basware's routes and the back door."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from basware_sandbox import (
    routes_auth,
    routes_backdoor,
    routes_documents,
    routes_p2p,
    routes_push,
    routes_upload,
    s3,
)
from basware_sandbox.config import VirtualHost
from basware_sandbox.faults import FaultKind, FaultRule
from basware_sandbox.state import SandboxState

BACKDOOR_PREFIX = "/_sandbox"


def _resolve_host(state: SandboxState, scope: Scope) -> VirtualHost | None:
    """By Host header first, then by the port the request came in on, then the default host."""
    host_header = Headers(scope=scope).get("host", "")
    name = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header
    if name in state.hosts:
        return state.hosts[name]
    server = scope.get("server")
    if server is not None and server[1] in state.port_hosts:
        return state.port_hosts[server[1]]
    if state.config.default_host is not None:
        return state.hosts[state.config.default_host]
    return None


async def _send_json(
    send: Send, status: int, body: object | None, headers: dict[str, str] | None = None
) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    head = [(b"content-length", str(len(raw)).encode())]
    if body is not None:
        head.append((b"content-type", b"application/json"))
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


async def _answer_fault(rule: FaultRule, send: Send) -> int:
    retry = {"Retry-After": rule.retry_after} if rule.retry_after else {}
    if rule.kind is FaultKind.RATE_LIMIT:
        await _send_json(send, 429, {"message": "Too Many Requests"}, retry)
        return 429
    if rule.kind is FaultKind.UNAVAILABLE:
        await _send_json(send, 503, {"message": "Service Unavailable"}, retry)
        return 503
    if rule.kind is FaultKind.EXPIRED_TOKEN:
        await _send_json(send, 401, None, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return 401
    if rule.kind is FaultKind.DROP:
        # A declared length and no body: uvicorn closes the connection mid-answer.
        head = [(b"content-length", b"64"), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        return 0
    code, kind, status = (
        ("CONFLICT_IN_POST", "BUSINESS", 409)
        if rule.kind is FaultKind.CONFLICT
        else ("UNEXPECTED_ERROR", "TECHNICAL", 500)
    )
    error = {
        "externalCode": None,
        "type": kind,
        "code": code,
        "message": "injected fault",
        "info": None,
    }
    await _send_json(send, status, {"requestId": None, "hasErrors": True, "errors": [error]})
    return status


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _resolve_host(self.state, scope)
        if host is None:
            await _send_json(send, 421, {"message": "Misdirected Request: unknown host"})
            return
        scope["basware.host"] = host
        path: str = scope["path"]
        if path.startswith(BACKDOOR_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        received_at = self.state.clock.now()
        authorization = Headers(scope=scope).get("authorization")
        scheme = authorization.split(" ", 1)[0].capitalize() if authorization else None
        status = 0
        retry_after: str | None = None

        async def send_status(message: Message) -> None:
            nonlocal status, retry_after
            if message["type"] == "http.response.start":
                status = message["status"]
                retry_after = Headers(raw=message.get("headers", [])).get("retry-after")
            await send(message)

        try:
            plan = self.state.faults.plan(host, scope["method"], path, bearer=scheme == "Bearer")
            delay_ms = plan.delay_ms + self.state.latency_for(host)
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            if plan.fault is not None:
                status = await _answer_fault(plan.fault, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            self.state.log_request(
                at=self.state.clock.now(),
                received_at=received_at,
                method=scope["method"],
                host=host.name,
                region=host.region.value,
                environment=host.environment.value,
                path=path,
                route=getattr(route, "path", path),
                status=status,
                retry_after=retry_after,
                authorization=authorization is not None,
                auth_scheme=scheme,
                duration_ms=(time.perf_counter() - started) * 1000,
            )


def create_app(state: SandboxState) -> ASGIApp:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    routes = (
        routes_auth.ROUTES
        + routes_p2p.ROUTES
        + routes_documents.ROUTES
        + routes_upload.ROUTES
        + routes_push.ROUTES
        + s3.ROUTES
        + routes_backdoor.ROUTES
    )
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    return SandboxMiddleware(app, state)
