"""What visma-reader holds while it runs: its pool and stores, the reader, one Visma client
per connection, and one poll loop per connection."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from mlconnector.connections import Connection, ConnectionSource
from mlconnector.contracts import Entity
from mlconnector.lifecycle import ServiceLifecycle, opened
from mlconnector.schedule import IntervalSchedule
from mlconnector.settings import DatabaseSettings
from mlconnector.vault import VaultError
from mlconnector.visma import VismaClient
from visma_reader import SERVICE_NAME
from visma_reader.cursor_store import CursorStore
from visma_reader.metrics import ReaderMetrics
from visma_reader.reader import Publish, Reader
from visma_reader.receipt_index import ReceiptIndex
from visma_reader.scheduler import SCHEDULE_REFRESH_SECONDS, ConnectionPoller, PollScheduler
from visma_reader.settings import ReaderSettings

log = logging.getLogger(__name__)


class VismaClients:
    """One client per connection, kept across polls (and its token with it)."""

    def __init__(self) -> None:
        self._clients: dict[str, VismaClient] = {}

    async def client_for(self, connection: Connection) -> VismaClient:
        client = self._clients.get(connection.name)
        if client is not None and (
            client.credentials != connection.visma or client.endpoints != connection.visma_endpoints
        ):
            # Rotated credentials or moved endpoints: the old token is of no use.
            await client.aclose()
            client = None
        if client is None:
            client = self._clients[connection.name] = connection.visma_client()
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


class ReaderLifecycle(ServiceLifecycle[ReaderSettings]):
    loops_name = "poll scheduler"

    def __init__(
        self,
        database: DatabaseSettings,
        settings: ReaderSettings,
        connections: ConnectionSource | None,
        publish: Publish,
    ) -> None:
        super().__init__(SERVICE_NAME, database, settings, pool_size=4, connections=connections)
        self._publish = publish
        self._clients = VismaClients()
        self._reader: Reader | None = None
        self._scheduler: PollScheduler | None = None
        self._source: ConnectionSource | None = None
        self._poll_loops: dict[str, asyncio.Task[None]] = {}

    @property
    def scheduler(self) -> PollScheduler:
        return opened(self._scheduler, "the poll scheduler")

    async def open(self) -> None:
        pool = await self.open_database("visma_reader")
        settings = self.settings
        self._reader = Reader(
            CursorStore(pool),
            ReceiptIndex(pool),
            self._publish,
            settings,
            ReaderMetrics(settings.progress_log_seconds),
        )
        self.on_close(self._clients.aclose)
        self._source = await self.open_connections()
        self._scheduler = PollScheduler([self._poller(c) for c in await self._source.list()])

    def _poller(self, connection: Connection) -> ConnectionPoller:
        default = IntervalSchedule(seconds=self.settings.poll_interval_seconds)
        source = opened(self._source, "the connections")
        return ConnectionPoller(
            connection.name, connection.tenant, source, self._poll, default=default
        )

    async def begin(self) -> None:
        # The polls publish: they start once the broker runs.
        await super().begin()
        for poller in self.scheduler.pollers:
            self._start_polling(poller)
        self.run_loop("connections", self._follow_connections())

    def _start_polling(self, poller: ConnectionPoller) -> None:
        self._poll_loops[poller.tenant] = self.run_loop(f"poll:{poller.name}", poller.run())

    async def _follow_connections(self) -> None:
        """Connections added while the reader runs (by the CLI or the console) are polled,
        and removed ones no longer, without a restart."""
        source = opened(self._source, "the connections")
        while True:
            await asyncio.sleep(SCHEDULE_REFRESH_SECONDS)
            try:
                listed = {c.tenant: c for c in await source.list()}
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, VaultError) as error:
                log.warning(
                    "connections not re-read (%s); next try in %.0f s",
                    error,
                    SCHEDULE_REFRESH_SECONDS,
                )
                continue
            for tenant in listed.keys() - self.scheduler.tenants():
                log.info("polling new connection %s", listed[tenant].name)
                poller = self._poller(listed[tenant])
                self.scheduler.add(poller)
                self._start_polling(poller)
            for tenant in self.scheduler.tenants() - listed.keys():
                removed = self.scheduler.remove(tenant)
                log.info("connection %s removed: not polled", removed.name if removed else tenant)
                task = self._poll_loops.pop(tenant, None)
                if task is not None:
                    self.end_loop(task)

    async def _poll(self, connection: Connection, entity: Entity) -> None:
        client = await self._clients.client_for(connection)
        await opened(self._reader, "the reader").poll(client, connection.tenant, entity)
