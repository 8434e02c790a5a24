"""What a service process holds while it runs: one lifecycle object per service.

Each service's `app.py` creates one subclass of `ServiceLifecycle` and gives it to
`service_app`, which calls it at four points of FastStream's lifespan:
- `open` before the broker starts: the database pool (migrations applied), the stores, and
  whatever the handlers need once messages arrive;
- `begin` once the broker runs: the service's own loops, which may publish;
- `halt` before the broker stops: the loops end, so nothing publishes into a closing broker;
- `close` after it stopped: everything opened is closed in reverse order, the pool last.
`/readyz` asks the same object (docs/architecture.md §2): its pool answers, its loops run.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Generic, TypeVar

import asyncpg
from faststream.kafka import KafkaBroker

from mlconnector.connection_store.source import open_connection_source
from mlconnector.connections import ConnectionSource
from mlconnector.lag import GroupConsumer
from mlconnector.migrations import apply_migrations
from mlconnector.readiness import Readiness, database_probe, tasks_probe
from mlconnector.settings import DatabaseSettings

T = TypeVar("T")
SettingsT = TypeVar("SettingsT")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A pool's reset that sends nothing (see `open_database`)."""


class NotStarted(RuntimeError):
    """Something of the service was asked for before `open` made it."""


def opened(value: T | None, what: str) -> T:
    """`value`, once the lifecycle made it; NotStarted naming `what` before."""
    if value is None:
        raise NotStarted(f"{what} is not open yet")
    return value


class ServiceLifecycle(ABC, Generic[SettingsT]):
    # What /readyz calls the service's own loops ("poll scheduler", ...).
    loops_name: ClassVar[str]

    def __init__(
        self,
        owner: str,
        database: DatabaseSettings,
        settings: SettingsT,
        *,
        pool_size: int,
        connections: ConnectionSource | None = None,
    ) -> None:
        """`settings` are the service's own; `connections` replace the environment's or the
        store's (tests, embedding)."""
        self.owner = owner
        self.database = database
        self.settings = settings
        self._pool_size = pool_size
        self._given_connections = connections
        self._exits = contextlib.AsyncExitStack()
        self._pool: asyncpg.Pool | None = None
        # None until `begin`: /readyz tells "not started" from "stopped".
        self._loops: list[asyncio.Task[None]] | None = None

    @abstractmethod
    async def open(self) -> None:
        """Opens what the handlers need: the database, stores, clients."""

    async def begin(self) -> None:
        """Starts the service's own loops (`run_loop`)."""
        self._loops = self._loops or []

    async def halt(self) -> None:
        loops, self._loops = self._loops or [], None
        for task in loops:
            task.cancel()
        # A loop that ended by an error said so on /readyz already; stopping goes on.
        await asyncio.gather(*loops, return_exceptions=True)

    async def close(self) -> None:
        await self._exits.aclose()
        self._pool = None

    # --- what a service opens ---

    async def open_database(self, migrations: str, *, stateless: bool = False) -> asyncpg.Pool:
        """The service's pool, after its migrations (package `migrations`) are applied.
        `stateless`: no code leaves session state on a pooled connection (a LISTEN, a SET, an
        advisory lock held past its statement), so a connection goes back to the pool without
        asyncpg's reset query, one round trip less per query."""
        pool = await asyncpg.create_pool(
            self.database.database_url,
            min_size=1,
            max_size=self._pool_size,
            reset=_keep_session if stateless else None,
        )
        self._exits.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await apply_migrations(conn, migrations, owner=self.owner)
        self._pool = pool
        return pool

    async def open_connections(self) -> ConnectionSource:
        """The connections given at creation, else the environment's one or the store."""
        if self._given_connections is not None:
            return self._given_connections
        return await self.enter(open_connection_source(self.database.database_url))

    async def enter(self, context: AbstractAsyncContextManager[T]) -> T:
        """Enters `context` now and leaves it at `close`."""
        return await self._exits.enter_async_context(context)

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Calls `callback` at `close`, before what was opened earlier is closed."""
        self._exits.push_async_callback(callback)

    def run_loop(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        if self._loops is None:
            self._loops = []
        self._loops.append(asyncio.create_task(work, name=name))

    # --- what /readyz and /metrics ask ---

    @property
    def pool(self) -> asyncpg.Pool:
        return opened(self._pool, f"the database pool of {self.owner}")

    def open_pool(self) -> asyncpg.Pool | None:
        return self._pool

    def loops(self) -> Sequence[asyncio.Task[None]] | None:
        """The service's own loops; None before they started."""
        return None if self._loops is None else list(self._loops)

    def consumers(self) -> Sequence[GroupConsumer]:
        """aiokafka consumers the service runs beside the broker's, for the lag metric."""
        return ()

    def readiness(self, broker: KafkaBroker) -> Readiness:
        readiness = Readiness(broker)
        readiness.add("database", database_probe(self.open_pool))
        readiness.add(self.loops_name, tasks_probe(f"the {self.loops_name}", self.loops))
        return readiness
