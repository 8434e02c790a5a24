"""What visma-reader holds while it runs: its pool and stores, the reader, one Visma client
per connection it polls (each asking its company's shared quota plan before every call), the
poll scheduler, which runs one poll loop per connection whose lease it holds and follows
connections added or removed while it runs, the early-poll handoff between readers, and the
broker watch, which recovers from the
database what a lost broker held."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from mlconnector.audit.replay import kafka_replay_publisher
from mlconnector.broker_epoch import EpochMarks
from mlconnector.connections import Connection, ConnectionSource
from mlconnector.contracts import Entity
from mlconnector.http_transport import AiohttpTransport
from mlconnector.lifecycle import ServiceLifecycle, opened
from mlconnector.schedule import IntervalSchedule
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.visma import VismaClient
from mlconnector.visma.quota_plan import QuotaPlan, migrate_quota_plan
from visma_reader import SERVICE_NAME
from visma_reader.broker_watch import BrokerWatch
from visma_reader.cursor_store import CursorStore
from visma_reader.handoff import EarlyPollHandoff
from visma_reader.leases import LeaseStore, Tenure
from visma_reader.metrics import ReaderMetrics
from visma_reader.poll_gate import PollGate
from visma_reader.reader import Publish, Reader
from visma_reader.receipt_index import ReceiptIndex
from visma_reader.scheduler import ConnectionPoller, PollScheduler
from visma_reader.settings import ReaderSettings


class ReaderTopics(BaseModel):
    """The topics the reader publishes to and reads, and the results topic it only watches."""

    model_config = ConfigDict(frozen=True)

    changes: str
    notifications: str
    results: str

    def watched(self) -> list[str]:
        return [self.changes, self.notifications, self.results]


class VismaClients:
    """One client per connection, kept across polls (and its token with it). Every call the
    reader makes is live work (ratelimit.QuotaLane): a list page carries up to a page of
    records, and a backfill's pages waiting for the quota would hold the connection's
    incremental polls behind them."""

    def __init__(self) -> None:
        self._clients: dict[str, VismaClient] = {}
        self.plan: QuotaPlan | None = None

    async def client_for(self, connection: Connection) -> VismaClient:
        client = self._clients.get(connection.name)
        if client is not None and (
            client.credentials != connection.visma or client.endpoints != connection.visma_endpoints
        ):
            # Rotated credentials or moved endpoints: the old token is of no use.
            await client.aclose()
            client = None
        if client is None:
            quota = None
            if self.plan is not None:
                quota = self.plan.gate(connection.visma.company_id, connection.visma.client_id)
            client = self._clients[connection.name] = connection.visma_client(
                AiohttpTransport(), quota=quota
            )
        return client

    async def forget(self, name: str) -> None:
        """The connection is polled elsewhere now: its token goes with its client."""
        client = self._clients.pop(name, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


class ReaderLifecycle(ServiceLifecycle[ReaderSettings]):
    loops_name = "poll scheduler"

    def __init__(
        self,
        kafka: KafkaSettings,
        database: DatabaseSettings,
        settings: ReaderSettings,
        topics: ReaderTopics,
        connections: ConnectionSource | None,
        publish: Publish,
    ) -> None:
        super().__init__(
            SERVICE_NAME,
            database,
            settings,
            pool_size=settings.database_pool_size,
            connections=connections,
        )
        self._kafka = kafka
        self._topics = topics
        self._publish = publish
        self._clients = VismaClients()
        self._gate = PollGate()
        self._reader: Reader | None = None
        self._scheduler: PollScheduler | None = None
        self._handoff: EarlyPollHandoff | None = None
        self._watch: BrokerWatch | None = None

    @property
    def scheduler(self) -> PollScheduler:
        return opened(self._scheduler, "the poll scheduler")

    async def open(self) -> None:
        # The recovery's advisory lock is taken on a session of its own (broker_watch.py);
        # the migrations release theirs before the pool is used.
        pool = await self.open_database("visma_reader", stateless=True)
        await migrate_quota_plan(pool)
        self._clients.plan = QuotaPlan(pool)
        settings = self.settings
        self._reader = Reader(
            CursorStore(pool),
            ReceiptIndex(pool),
            self._publish,
            settings,
            ReaderMetrics(settings.progress_log_seconds),
            self._gate,
        )
        self.on_close(self._clients.aclose)
        source = await self.open_connections()
        default = IntervalSchedule(seconds=settings.poll_interval_seconds)
        early_interval = timedelta(seconds=settings.early_poll_interval_seconds)

        def poller(connection: Connection, tenure: Tenure) -> ConnectionPoller:
            return ConnectionPoller(
                connection.name,
                connection.tenant,
                source,
                self._poll,
                tenure,
                default=default,
                early_interval=early_interval,
            )

        instance = settings.instance or f"{socket.gethostname()}-{os.getpid()}"
        self._handoff = EarlyPollHandoff(pool, self.database.database_url)
        self._scheduler = PollScheduler(
            source,
            poller,
            settings.connections_refresh_seconds,
            LeaseStore(pool, instance, settings.lease_seconds),
            stopped=self._clients.forget,
            handoff=self._handoff,
        )
        self._watch = BrokerWatch(
            EpochMarks(self._kafka, self._topics.watched()),
            pool,
            self.database.database_url,
            self._gate,
            lambda: kafka_replay_publisher(self._kafka, self._topics.changes),
            interval=settings.broker_check_seconds,
            instance=instance,
            recovered=self._poll_now,
        )

    async def begin(self) -> None:
        # The polls and the recovery publish: they start once the broker runs.
        await super().begin()
        self.run_loop("poll-scheduler", self.scheduler.run())
        handoff = opened(self._handoff, "the early-poll handoff")
        self.run_loop("early-poll-handoff", handoff.listen(self.scheduler.requested))
        self.run_loop("broker-watch", opened(self._watch, "the broker watch").run())

    async def _poll_now(self) -> None:
        """After a recovery: what it made the reader read again is read at once."""
        for poller in self.scheduler.pollers:
            poller.wake(None)

    async def _poll(self, connection: Connection, entity: Entity, tenure: Tenure) -> None:
        client = await self._clients.client_for(connection)
        await opened(self._reader, "the reader").poll(client, connection.tenant, entity, tenure)
