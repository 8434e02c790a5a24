"""The gateway's two webhook routes, and the ASGI app that serves them beside the service's.

FastStream's ASGI app matches exact paths, and Basware's route carries the tenant in its
path, so a thin dispatcher sends /webhooks/* to a Starlette router and everything else
(lifespan, /healthz, /readyz, /metrics) to the FastStream service app.
"""

from __future__ import annotations

from typing import Any

from faststream.asgi import AsgiFastStream
from starlette.applications import Starlette
from starlette.routing import Route

from webhook_gateway.receiver import WebhookReceiver


def webhook_router(receiver: WebhookReceiver) -> Starlette:
    return Starlette(
        routes=[
            Route("/webhooks/basware/{tenant}", receiver.basware, methods=["POST"]),
            Route("/webhooks/visma", receiver.visma, methods=["POST"]),
        ]
    )


class GatewayApp:
    """The ASGI app uvicorn serves."""

    def __init__(self, service: AsgiFastStream, router: Starlette) -> None:
        self.service = service
        self.router = router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            await self.router(scope, receive, send)
        else:
            await self.service(scope, receive, send)
