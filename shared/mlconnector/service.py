"""What every service process shares: a FastStream ASGI app with /healthz, /readyz and
/metrics, its consumer lag reported as a metric, and its consumers rewound onto a broker that
lost what it held (mlconnector/broker_epoch.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, make_ping_asgi
from faststream.asgi.types import ASGIApp
from faststream.kafka import KafkaBroker
from prometheus_client import make_asgi_app

from mlconnector.asgi import ServerLimits
from mlconnector.broker_epoch import follow_broker_epoch
from mlconnector.idle_fetch import lengthen_idle_fetches
from mlconnector.lag import GroupConsumer, broker_consumers, report_lag
from mlconnector.lifecycle import ServiceLifecycle
from mlconnector.logs import configure_logging
from mlconnector.readiness import Readiness
from mlconnector.settings import KafkaSettings, ServiceSettings

Hook = Callable[[], Awaitable[None]]


def service_app(
    broker: KafkaBroker,
    lifecycle: ServiceLifecycle[Any] | None = None,
    *,
    kafka: KafkaSettings | None = None,
    readiness: Readiness | None = None,
    consumers: Callable[[], Iterable[GroupConsumer]] | None = None,
    extra_routes: Sequence[tuple[str, Any]] = (),
    on_startup: Sequence[Hook] = (),
    after_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    after_shutdown: Sequence[Hook] = (),
) -> AsgiFastStream:
    """The broker plus the endpoints an operator expects: liveness, readiness and metrics.

    `lifecycle` is the service's lifecycle object (`mlconnector.lifecycle`): it is started
    and stopped with the broker, answers /readyz, and names the aiokafka consumers the
    service runs itself beside the broker's subscribers, so that their lag is reported too.
    Without one (the writer, for now), `readiness`, `consumers` and the hooks say the same
    one by one. With `kafka`, the consumers follow the broker's epoch marks."""
    if lifecycle is not None:
        readiness = lifecycle.readiness(broker)
        consumers = lifecycle.consumers
        on_startup, after_startup = [lifecycle.open], [lifecycle.begin]
        on_shutdown, after_shutdown = [lifecycle.halt], [lifecycle.close]
    readiness = readiness or Readiness(broker)
    lag_task: list[asyncio.Task[None]] = []

    def all_consumers() -> list[GroupConsumer]:
        return [*broker_consumers(broker), *(consumers() if consumers else ())]

    async def start_lag() -> None:
        lag_task.append(asyncio.create_task(report_lag(all_consumers), name="consumer-lag"))
        if kafka is not None:
            follow = follow_broker_epoch(kafka, all_consumers)
            lag_task.append(asyncio.create_task(follow, name="broker-epoch"))
            idle = lengthen_idle_fetches(kafka, all_consumers)
            lag_task.append(asyncio.create_task(idle, name="idle-fetches"))

    async def stop_lag() -> None:
        while lag_task:
            task = lag_task.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        ("/healthz", make_ping_asgi(broker, timeout=5.0, include_in_schema=False)),
        ("/readyz", readiness.asgi()),
        ("/metrics", make_asgi_app()),
        *extra_routes,
    ]
    return AsgiFastStream(
        broker,
        asgi_routes=routes,
        on_startup=list(on_startup),
        after_startup=[*after_startup, start_lag],
        on_shutdown=[stop_lag, *on_shutdown],
        after_shutdown=list(after_shutdown),
    )


def run_service(
    app: ASGIApp,
    *,
    name: str,
    settings: ServiceSettings | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Runs one service until SIGINT/SIGTERM; uvicorn drives FastStream's lifespan.
    `limits` harden a service that faces the internet (the webhook gateway)."""
    settings = settings or ServiceSettings()
    configure_logging(settings.log_level, service=name)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        **(limits.uvicorn_options() if limits is not None else {}),
    )
