"""What a writer process opens at start and closes at shutdown: the database pool and its
migrations, the stores, the Basware request budget, the Visma quota plan, the connections
and their executors, and the background loops (heartbeat, follow-up)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from basware_writer.domain import Outcomes
from basware_writer.executor import TenantExecutor
from basware_writer.follow_up import FollowUp
from basware_writer.metrics import observe_budget_wait
from basware_writer.settings import WriterSettings
from basware_writer.stores import WriterStores
from basware_writer.tenants import Tenants
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.connection_store.source import open_connection_source
from mlconnector.connections import ConnectionSource
from mlconnector.migrations import apply_migrations
from mlconnector.settings import DatabaseSettings
from mlconnector.visma.quota_plan import QuotaPlan, migrate_quota_plan

# The database cannot be reached: a batch is taken again rather than answered "failed".
DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)

PublishFollowUp = Callable[[TenantExecutor, Outcomes], Awaitable[None]]


class WriterConnection(asyncpg.Connection):
    """The writer keeps no session state (no SET, LISTEN, cursor or advisory lock outlives
    its statement), so a connection goes back to the pool without asyncpg's reset query:
    one round trip less for every statement run on the pool. An open transaction is still
    rolled back."""

    def get_reset_query(self) -> str:
        return ""


class WriterLifecycle:
    def __init__(
        self,
        database: DatabaseSettings,
        settings: WriterSettings,
        connections: ConnectionSource | None,
    ) -> None:
        self._database = database
        self._settings = settings
        self._connections = connections
        self._exits = contextlib.AsyncExitStack()
        self.pool: asyncpg.Pool | None = None
        self._tenants: Tenants | None = None
        self._follow_up: FollowUp | None = None
        self._stores: WriterStores | None = None
        self.tasks: list[asyncio.Task[None]] | None = None

    @property
    def tenants(self) -> Tenants:
        if self._tenants is None:
            raise RuntimeError("basware-writer consumed before its start-up finished")
        return self._tenants

    @property
    def follow_up(self) -> FollowUp:
        if self._follow_up is None:
            raise RuntimeError("basware-writer consumed before its start-up finished")
        return self._follow_up

    async def start(self, publish_follow_up: PublishFollowUp) -> None:
        settings = self._settings
        pool = self.pool = await asyncpg.create_pool(
            self._database.database_url,
            min_size=1,
            max_size=12,
            # A cached statement with a lifetime keeps a timer whose callback holds the
            # context it was prepared in (a whole batch, with its Kafka records) alive for
            # that lifetime; the writer's statements are few, so they are cached for good.
            max_cached_statement_lifetime=0,
            connection_class=WriterConnection,
        )
        async with pool.acquire() as conn:
            await apply_migrations(conn, "basware_writer", owner="basware-writer")
        await migrate_quota_plan(pool)
        stores = self._stores = WriterStores.of(pool, settings.instance)
        # Alive before any claim is made, so no other instance takes this one's work.
        await stores.instances.beat()
        source = self._connections
        if source is None:
            source = await self._exits.enter_async_context(
                open_connection_source(self._database.database_url)
            )
        self._tenants = Tenants(
            source,
            stores,
            RateBudget(pool, settings, on_wait=observe_budget_wait),
            QuotaPlan(pool),
            settings,
        )
        self._follow_up = FollowUp(stores, self.tenants.executor, publish_follow_up, settings)

    async def begin(self) -> None:
        follow_up = self.follow_up
        self.tasks = [
            asyncio.create_task(follow_up.heartbeat(), name="writer-heartbeat"),
            asyncio.create_task(follow_up.run(), name="writer-follow-up"),
        ]

    async def halt(self) -> None:
        for task in self.tasks or []:
            task.cancel()
        for task in self.tasks or []:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        if self._stores is not None:
            # What this instance claimed is free for the others at once.
            with contextlib.suppress(*DATABASE_DOWN):
                await self._stores.instances.leave()
        if self._tenants is not None:
            await self._tenants.aclose()
        await self._exits.aclose()
        if self.pool is not None:
            await self.pool.close()
