"""The two origins of a sandbox: the ERP API (with the back door) and Visma Connect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from visma_sandbox.api import VismaApi
from visma_sandbox.backdoor import Backdoor
from visma_sandbox.connect import TOKEN_PATH, ConnectTokenEndpoint
from visma_sandbox.state import SandboxState

_API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def api_app(state: SandboxState) -> Starlette:
    """`/v1/...` (and the old `/API/controller/api/v1/...`), `/_sandbox/...`, `/connect/token`."""

    api = VismaApi(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as http:
            dispatcher = asyncio.create_task(state.webhooks.run(http))
            try:
                yield
            finally:
                await api.close()
                dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatcher

    # The token endpoint also answers here, so a one-port setup (the local stack) works too.
    token = Route(TOKEN_PATH, ConnectTokenEndpoint(state).handle, methods=["POST"])
    routes = [
        *Backdoor(state).routes(),
        token,
        Route("/{path:path}", api.handle, methods=_API_METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def connect_app(state: SandboxState) -> Starlette:
    """Visma Connect: the token endpoint only."""
    return Starlette(
        routes=[Route(TOKEN_PATH, ConnectTokenEndpoint(state).handle, methods=["POST"])]
    )
