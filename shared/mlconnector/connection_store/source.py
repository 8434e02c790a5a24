"""Where a service gets its connections: the environment's one, or the encrypted store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from mlconnector.connection_store.store import ConnectionStore
from mlconnector.connections import ConnectionSource, EnvConnectionSource
from mlconnector.vault import Keyring


@contextlib.asynccontextmanager
async def open_connection_source(
    database_url: str, environ: Mapping[str, str] | None = None
) -> AsyncIterator[ConnectionSource]:
    """The connection the environment describes when VISMA_CLIENT_ID is set; otherwise the
    stored connections, opened with the master key (MLC_MASTER_KEY, ...)."""
    if EnvConnectionSource.configured(environ):
        yield EnvConnectionSource(environ)
        return
    async with ConnectionStore.open(database_url, Keyring.from_env(environ)) as store:
        yield store
