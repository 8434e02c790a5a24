"""What every service process shares: a FastStream ASGI app with /healthz and /metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, make_ping_asgi
from faststream.asgi.types import ASGIApp
from faststream.kafka import KafkaBroker
from prometheus_client import make_asgi_app

from mlconnector.logs import configure_logging
from mlconnector.settings import ServiceSettings


def service_app(
    broker: KafkaBroker,
    *,
    extra_routes: Sequence[tuple[str, Any]] = (),
    **hooks: Any,
) -> AsgiFastStream:
    """The broker plus the endpoints an operator expects: liveness and Prometheus metrics."""
    routes = [
        ("/healthz", make_ping_asgi(broker, timeout=5.0, include_in_schema=False)),
        ("/metrics", make_asgi_app()),
        *extra_routes,
    ]
    return AsgiFastStream(broker, asgi_routes=routes, **hooks)


def run_service(app: ASGIApp, *, name: str, settings: ServiceSettings | None = None) -> None:
    """Runs one service until SIGINT/SIGTERM; uvicorn drives FastStream's lifespan."""
    settings = settings or ServiceSettings()
    configure_logging(settings.log_level, service=name)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
