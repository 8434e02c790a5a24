"""`console` (or `python -m console`): serves the console until SIGINT/SIGTERM."""

from __future__ import annotations

from console.app import create_app
from mlconnector.service import run_service


def main() -> None:
    run_service(create_app(), name="console")


if __name__ == "__main__":
    main()
