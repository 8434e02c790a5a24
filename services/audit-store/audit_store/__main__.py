"""`audit-store` (or `python -m audit_store`): runs the service until SIGINT/SIGTERM."""

from __future__ import annotations

from audit_store import SERVICE_NAME
from audit_store.app import create_app
from mlconnector.service import run_service


def main() -> None:
    run_service(create_app(), name=SERVICE_NAME)


if __name__ == "__main__":
    main()
