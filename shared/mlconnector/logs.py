"""Logging set-up shared by every process: one line per record, level from MLC_LOG_LEVEL."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO", *, service: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s",
        force=True,
    )
    # aiokafka logs every rebalance step at INFO; keep the service's own lines readable.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request at INFO: with many connections, most of a reader's log and a
    # share of its CPU. The clients log what fails themselves.
    logging.getLogger("httpx").setLevel(logging.WARNING)
