"""`webhook-gateway`: serves the webhook endpoints on MLC_HTTP_HOST:MLC_HTTP_PORT."""

from __future__ import annotations

from mlconnector.service import run_service
from mlconnector.settings import DatabaseSettings, KafkaSettings
from webhook_gateway.app import SERVICE_NAME, build_app
from webhook_gateway.settings import GatewaySettings


def main() -> None:
    app = build_app(settings=GatewaySettings(), kafka=KafkaSettings(), database=DatabaseSettings())
    run_service(app, name=SERVICE_NAME)


if __name__ == "__main__":
    main()
