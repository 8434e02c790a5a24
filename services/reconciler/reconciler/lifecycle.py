"""What the reconciler holds while it runs: its pool (its migrations applied), the shared
Basware budget, the connections, and the schedule loop."""

from __future__ import annotations

from mlconnector.audit.replay import ReplayPublisher
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.connections import ConnectionSource
from mlconnector.lifecycle import ServiceLifecycle
from mlconnector.settings import DatabaseSettings
from mlconnector.visma.quota_plan import migrate_quota_plan
from reconciler import SERVICE_NAME
from reconciler.scheduler import schedule_forever
from reconciler.settings import ReconcilerSettings


class ReconcilerLifecycle(ServiceLifecycle[ReconcilerSettings]):
    loops_name = "reconcile schedule"

    def __init__(
        self,
        database: DatabaseSettings,
        settings: ReconcilerSettings,
        connections: ConnectionSource | None,
        publisher: ReplayPublisher | None,
    ) -> None:
        """`publisher`: where heals go, None when scheduled runs only report."""
        super().__init__(SERVICE_NAME, database, settings, pool_size=2, connections=connections)
        self._source: ConnectionSource | None = None
        self._publisher = publisher

    async def open(self) -> None:
        await migrate_quota_plan(await self.open_database("reconciler"))
        self._source = await self.open_connections()

    async def begin(self) -> None:
        await super().begin()
        assert self._source is not None
        budget = RateBudget(self.pool, self.settings)
        self.run_loop(
            "reconcile-schedule",
            schedule_forever(self.pool, budget, self._source, self.settings, self._publisher),
        )
