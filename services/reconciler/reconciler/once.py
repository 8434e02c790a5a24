"""One reconcile of one connection or all, stored like a scheduled run, healed on request:
what `mlconnector reconcile` runs."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from pydantic import BaseModel

from mlconnector.audit.replay import kafka_replay_publisher
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.connection_store import open_connection_source
from mlconnector.contracts import Entity
from mlconnector.migrations import apply_migrations
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector.visma.quota_plan import QuotaPlan, migrate_quota_plan
from reconciler.heal import Healed
from reconciler.heal import heal as heal_report
from reconciler.reading import ConnectionReport, budget_pace, reconcile_connection
from reconciler.settings import ReconcilerSettings
from reconciler.store import save_report
from reconciler.uploads import note_uploads


class ReconcileOutput(BaseModel):
    """What one `mlconnector reconcile` found (and, with --heal, re-published)."""

    connections: list[ConnectionReport]
    healed: list[Healed] = []

    @property
    def all_equal(self) -> bool:
        return all(c.all_equal for c in self.connections)


async def reconcile_once(
    database_url: str,
    name: str | None,
    entities: Sequence[Entity],
    *,
    heal: bool,
    kafka: KafkaSettings,
    topic: str = Topic.VISMA_CHANGES.value,
) -> ReconcileOutput:
    """Reconciles the named connection (or every enabled one), stores each run, and with
    `heal` re-publishes what is missing or different."""
    output = ReconcileOutput(connections=[])
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as db:
            await apply_migrations(db, "reconciler", owner="reconciler")
        await migrate_quota_plan(pool)
        budget = RateBudget(pool, ReconcilerSettings())
        plan = QuotaPlan(pool)
        async with open_connection_source(database_url) as source:
            if name:
                connections = [await source.get(name)]
            else:
                connections = [c for c in await source.list() if c.enabled]
        for connection in connections:
            quota = plan.gate(connection.visma.company_id, connection.visma.client_id)
            async with (
                connection.visma_client(quota=quota) as visma,
                connection.basware_client() as basware,
            ):
                pace = await budget_pace(budget, connection, basware)
                report = await reconcile_connection(connection, visma, basware, pace, entities)
                async with pool.acquire() as db:
                    report = await note_uploads(db, report)
                    await save_report(db, report)
                output.connections.append(report)
                if heal:
                    async with (
                        kafka_replay_publisher(kafka, topic) as publisher,
                        pool.acquire() as db,
                    ):
                        output.healed += await heal_report(report, visma, db, publisher)
    finally:
        await pool.close()
    return output
