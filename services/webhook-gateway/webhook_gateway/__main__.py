"""`webhook-gateway`: serves the webhook endpoints on MLC_HTTP_HOST:MLC_HTTP_PORT."""

from __future__ import annotations

from mlconnector.service import run_service
from webhook_gateway import SERVICE_NAME
from webhook_gateway.app import create_app
from webhook_gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    run_service(create_app(settings=settings), name=SERVICE_NAME, limits=settings.server_limits())


if __name__ == "__main__":
    main()
