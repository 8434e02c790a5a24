"""What `mlconnector run` does before the services start on a broker that holds nothing.

The embedded broker keeps its topics in memory only (docs/broker.md §3.6), so after a stop, a
crash or a reboot every message that was on it is gone. Nothing is lost all the same, because
PostgreSQL knows everything the broker held:
- a change the audit log recorded but that has no result yet is re-published from the log
  (the writer skips what Basware already accepted, so nothing is posted twice);
- a change the reader published that the audit log never recorded was only on the broker:
  its "published" mark is dropped and its cursor moved back, so the reader reads it again.
Results the writer published but the audit log never recorded need nothing: the writer's own
tables hold what Basware accepted, and the re-published change is answered again.
"""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel

from mlconnector.audit.replay import PendingRecords, ReplayAction, kafka_replay_publisher, replay
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from visma_reader.cursor_store import forget_unlogged


class RecoveryReport(BaseModel):
    republished: int
    reread: int

    def describe(self) -> str:
        return (
            f"recovered from the database: {self.republished} pending changes re-published "
            f"from the audit log, {self.reread} records to read again from Visma"
        )


async def recover_from_database(database_url: str, kafka: KafkaSettings) -> RecoveryReport:
    conn = await asyncpg.connect(database_url)
    try:
        reread = await forget_unlogged(conn)
        if await conn.fetchval("SELECT to_regclass('audit_record_status') IS NULL"):
            return RecoveryReport(republished=0, reread=reread)
        async with kafka_replay_publisher(kafka, Topic.VISMA_CHANGES.value) as publisher:
            report = await replay(conn, PendingRecords(), publisher)
    finally:
        await conn.close()
    return RecoveryReport(republished=report.count(ReplayAction.REPLAYED), reread=reread)
