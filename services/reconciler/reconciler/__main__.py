"""`reconciler` (or `python -m reconciler`): runs the service until SIGINT/SIGTERM."""

from __future__ import annotations

from mlconnector.service import run_service
from reconciler import SERVICE_NAME
from reconciler.app import create_app


def main() -> None:
    run_service(create_app(), name=SERVICE_NAME)


if __name__ == "__main__":
    main()
