"""`visma-reader` (or `python -m visma_reader`): runs the service until SIGINT/SIGTERM."""

from __future__ import annotations

from mlconnector.service import run_service
from visma_reader import SERVICE_NAME
from visma_reader.app import create_app


def main() -> None:
    run_service(create_app(), name=SERVICE_NAME)


if __name__ == "__main__":
    main()
