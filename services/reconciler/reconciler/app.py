"""reconciler's app, wiring only: a broker without subscribers (the stack's readiness and
metrics endpoints are the same for every service) and the lifecycle with its schedule."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from mlconnector.connections import ConnectionSource
from mlconnector.kafka import make_broker
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from reconciler import SERVICE_NAME
from reconciler.lifecycle import ReconcilerLifecycle
from reconciler.settings import ReconcilerSettings


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: ReconcilerSettings | None = None,
    connections: ConnectionSource | None = None,
) -> AsgiFastStream:
    broker = make_broker(kafka or KafkaSettings(), client_id=SERVICE_NAME)
    lifecycle = ReconcilerLifecycle(
        database or DatabaseSettings(), settings or ReconcilerSettings(), connections
    )
    return service_app(broker, lifecycle)
