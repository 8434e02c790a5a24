"""webhook-gateway's app, wiring only: the broker, the webhook receiver and its routes, the
lifecycle object, and the service endpoints (`routes.GatewayApp` serves both)."""

from __future__ import annotations

from mlconnector.kafka import make_broker
from mlconnector.service import service_app
from mlconnector.settings import DatabaseSettings, KafkaSettings
from webhook_gateway import SERVICE_NAME
from webhook_gateway.lifecycle import GatewayLifecycle
from webhook_gateway.receiver import WebhookReceiver
from webhook_gateway.routes import GatewayApp, webhook_router
from webhook_gateway.secret_source import ConfiguredSecrets, ConnectionSecrets, SecretSource
from webhook_gateway.settings import GatewaySettings


def create_app(
    kafka: KafkaSettings | None = None,
    database: DatabaseSettings | None = None,
    settings: GatewaySettings | None = None,
    secrets: SecretSource | None = None,
) -> GatewayApp:
    """`secrets` replaces the secret source (tests); by default the connections' webhook
    secrets, with MLC_GATEWAY_*_SECRETS added."""
    settings = settings or GatewaySettings()
    broker = make_broker(kafka or KafkaSettings(), client_id=SERVICE_NAME)
    lifecycle = GatewayLifecycle(database or DatabaseSettings(), settings)
    configured = ConfiguredSecrets(settings.basware_secrets, settings.visma_secrets)
    receiver = WebhookReceiver(
        broker=broker,
        settings=settings,
        secrets=secrets
        or ConnectionSecrets(
            lifecycle.connections,
            configured,
            settings.connections_refresh,
            settings.connections_miss_refresh,
        ),
        seen=lifecycle.seen,
    )
    return GatewayApp(service_app(broker, lifecycle), webhook_router(receiver))
