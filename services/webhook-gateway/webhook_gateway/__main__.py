"""`webhook-gateway`: serves the webhook endpoints on MLC_HTTP_HOST:MLC_HTTP_PORT."""

from __future__ import annotations

from mlconnector.service import run_service
from webhook_gateway import SERVICE_NAME
from webhook_gateway.app import create_app


def main() -> None:
    run_service(create_app(), name=SERVICE_NAME)


if __name__ == "__main__":
    main()
