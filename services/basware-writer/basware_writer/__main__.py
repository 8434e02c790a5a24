from __future__ import annotations

import logging

from basware_writer.app import create_app
from mlconnector.service import run_service


def main() -> None:
    # One line per HTTP call is noise at the writer's request rate; outcomes are logged.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_service(create_app(), name="basware-writer")


if __name__ == "__main__":
    main()
