from __future__ import annotations

from mlconnector.service import run_service
from visma_reader.app import create_app


def main() -> None:
    run_service(create_app(), name="visma-reader")


if __name__ == "__main__":
    main()
