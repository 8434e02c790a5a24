"""What audit-store holds while it runs: its pool, the recorder, the log consumer whose
loop appends every batch (its own aiokafka consumer, reported for lag), the partition
keeper, and the checkpointer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from audit_store import SERVICE_NAME
from audit_store.consumer import LogConsumer
from audit_store.partitions import PartitionKeeper
from audit_store.recorder import Recorder
from audit_store.settings import AuditSettings
from mlconnector.audit.checkpoint import Checkpointer, CheckpointFile
from mlconnector.lag import GroupConsumer
from mlconnector.lifecycle import ServiceLifecycle, opened
from mlconnector.migrations import apply_migrations
from mlconnector.settings import DatabaseSettings, KafkaSettings
from mlconnector.vault import Keyring, VaultError

log = logging.getLogger(__name__)

MIGRATIONS = "audit_store"


async def migrate(database_url: str) -> None:
    """The log's tables in a database, without the service (tests and the benchmark)."""
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn, MIGRATIONS, owner=SERVICE_NAME)
    finally:
        await conn.close()


class AuditLifecycle(ServiceLifecycle[AuditSettings]):
    loops_name = "log consumer"

    def __init__(
        self,
        kafka: KafkaSettings,
        database: DatabaseSettings,
        settings: AuditSettings,
        topics: Sequence[str],
    ) -> None:
        super().__init__(SERVICE_NAME, database, settings, pool_size=3)
        self._kafka = kafka
        self._topics = topics
        self._consumer: LogConsumer | None = None

    @property
    def consumer(self) -> LogConsumer:
        return opened(self._consumer, "the log consumer")

    async def open(self) -> None:
        pool = await self.open_database(MIGRATIONS)
        self._consumer = LogConsumer(self._kafka, self._topics, Recorder(pool), self.settings)

    async def begin(self) -> None:
        await super().begin()
        consumer = self.consumer
        await consumer.start()
        self.on_close(consumer.stop)
        self.run_loop("audit-store:consume", consumer.run())
        keeper = PartitionKeeper(
            self.pool,
            ahead=self.settings.partitions_ahead_months,
            retention_months=self.settings.retention_months,
            export_folder=self.settings.export_path(),
            interval=self.settings.maintenance_interval_seconds,
        )
        self.run_loop("audit-store:partitions", keeper.run())
        checkpointer = self._checkpointer()
        if checkpointer is not None:
            self.run_loop("audit-store:checkpoint", checkpointer.run())
            # The last heads too, before the pool closes: a stop leaves nothing unsigned.
            self.on_close(self._final(checkpointer))

    def _checkpointer(self) -> Checkpointer | None:
        try:
            keyring = Keyring.from_env()
        except VaultError as error:
            log.warning("no signed audit checkpoints: %s", error)
            return None
        file = CheckpointFile(self.settings.checkpoints_path())
        log.info("signed audit checkpoints go to %s", file.path)
        return Checkpointer(self.pool, file, keyring, self.settings.checkpoint_interval_seconds)

    @staticmethod
    def _final(checkpointer: Checkpointer) -> Callable[[], Awaitable[None]]:
        async def take() -> None:
            try:
                await checkpointer.take()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("the last audit checkpoint was not written: %s", error)

        return take

    def consumers(self) -> Sequence[GroupConsumer]:
        return [self._consumer.group_consumer] if self._consumer is not None else []
