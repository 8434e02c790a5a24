"""What visma-reader does once it found that the broker lost what it held (broker_watch.py).

A broker that lost its topics (a production broker may lose one; the embedded one keeps
them in memory only, docs/event-broker.md §3.6) takes every message on them along. Nothing is lost
all the same, because PostgreSQL knows everything the broker held:
- a change the audit log recorded but that has no result yet (pending; parked ones wait in
  the writer's own tables) is re-published from the log, as a replay with the reason
  "broker lost" (the writer skips what Basware already accepted, so nothing is posted twice);
- a change the reader published that the audit log never recorded was only on the lost
  broker: its "published" mark is dropped and its cursor moved back, so the reader reads it
  again from Visma.
Results the writer published but the audit log never recorded need nothing: the writer's own
tables hold what Basware accepted, and the re-published change is answered again.
"""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel

from mlconnector.audit.replay import PendingRecords, ReplayAction, ReplayPublisher, replay
from visma_reader.cursor_store import forget_unlogged

# The replay-reason of what the recovery re-publishes: the log says why it was sent again.
BROKER_LOST = "broker lost"


class RecoveryReport(BaseModel):
    republished: int
    reread: int

    def describe(self) -> str:
        return (
            f"{self.republished} pending changes re-published from the audit log, "
            f"{self.reread} records to read again from Visma"
        )


async def recover_from_database(
    conn: asyncpg.Connection, publisher: ReplayPublisher
) -> RecoveryReport:
    """Runs while no poll is under way (poll_gate.py): the cursors it moves back stay back."""
    reread = await forget_unlogged(conn)
    if await conn.fetchval("SELECT to_regclass('audit_record_status') IS NULL"):
        return RecoveryReport(republished=0, reread=reread)
    report = await replay(conn, PendingRecords(), publisher, replay_reason=BROKER_LOST)
    return RecoveryReport(republished=report.count(ReplayAction.REPLAYED), reread=reread)
