"""What visma-reader holds while it runs: its pool and stores, the reader, one Visma client
per connection, and the poll scheduler, which runs one poll loop per connection and follows
connections added or removed while it runs."""

from __future__ import annotations

from datetime import timedelta

from mlconnector.connections import Connection, ConnectionSource
from mlconnector.contracts import Entity
from mlconnector.lifecycle import ServiceLifecycle, opened
from mlconnector.schedule import IntervalSchedule
from mlconnector.settings import DatabaseSettings
from mlconnector.visma import VismaClient
from visma_reader import SERVICE_NAME
from visma_reader.cursor_store import CursorStore
from visma_reader.metrics import ReaderMetrics
from visma_reader.reader import Publish, Reader
from visma_reader.receipt_index import ReceiptIndex
from visma_reader.scheduler import ConnectionPoller, PollScheduler
from visma_reader.settings import ReaderSettings


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
        source = await self.open_connections()
        default = IntervalSchedule(seconds=settings.poll_interval_seconds)
        early_interval = timedelta(seconds=settings.early_poll_interval_seconds)

        def poller(connection: Connection) -> ConnectionPoller:
            return ConnectionPoller(
                connection.name,
                connection.tenant,
                source,
                self._poll,
                default=default,
                early_interval=early_interval,
            )

        self._scheduler = PollScheduler(source, poller, settings.connections_refresh_seconds)

    async def begin(self) -> None:
        # The polls publish: they start once the broker runs.
        await super().begin()
        self.run_loop("poll-scheduler", self.scheduler.run())

    async def _poll(self, connection: Connection, entity: Entity) -> None:
        client = await self._clients.client_for(connection)
        await opened(self._reader, "the reader").poll(client, connection.tenant, entity)
