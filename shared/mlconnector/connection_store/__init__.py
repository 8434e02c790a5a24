"""Connections stored in PostgreSQL with their secrets sealed (migrations in ./migrations)."""

from mlconnector.connection_store.source import open_connection_source
from mlconnector.connection_store.store import (
    READ_FAILURES,
    ConnectionExists,
    ConnectionStore,
    RotationReport,
    join_secrets,
    split_secrets,
)

__all__ = [
    "READ_FAILURES",
    "ConnectionExists",
    "ConnectionStore",
    "RotationReport",
    "join_secrets",
    "open_connection_source",
    "split_secrets",
]
