"""`invoice-follow-up` (or `python -m invoice_follow_up`): runs the service until SIGINT/SIGTERM."""

from __future__ import annotations

from invoice_follow_up import SERVICE_NAME
from invoice_follow_up.app import create_app
from mlconnector.service import run_service


def main() -> None:
    run_service(create_app(), name=SERVICE_NAME)


if __name__ == "__main__":
    main()
