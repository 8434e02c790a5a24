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
    stored connections, opened with the master key (MLC_MASTER_KEY, ...), whose keyring is
    loaded again when a secret needs a key it lacks (a rotation, from MLC_MASTER_KEY_FILE)."""
    if EnvConnectionSource.configured(environ):
        yield EnvConnectionSource(environ)
        return

    def reload() -> Keyring:
        return Keyring.from_env(environ)

    async with ConnectionStore.open(database_url, reload(), reload) as store:
        yield store
