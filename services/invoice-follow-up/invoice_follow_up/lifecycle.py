"""What invoice-follow-up holds while it runs: its pool and store, one pair of API clients
per tenant, the follow-up itself and its periodic check."""

from __future__ import annotations

from invoice_follow_up import SERVICE_NAME
from invoice_follow_up.follow_up import InvoiceFollowUp, Publish, TenantApis, check_periodically
from invoice_follow_up.settings import FollowUpSettings
from invoice_follow_up.store import InvoiceStore
from mlconnector.connections import ConnectionSource
from mlconnector.lifecycle import ServiceLifecycle, opened
from mlconnector.settings import DatabaseSettings
from mlconnector.visma.quota_plan import QuotaPlan, migrate_quota_plan


class FollowUpLifecycle(ServiceLifecycle[FollowUpSettings]):
    loops_name = "invoice check"

    def __init__(
        self,
        database: DatabaseSettings,
        settings: FollowUpSettings,
        connections: ConnectionSource | None,
        publish: Publish,
    ) -> None:
        super().__init__(SERVICE_NAME, database, settings, pool_size=4, connections=connections)
        self._publish = publish
        self._follow_up: InvoiceFollowUp | None = None

    @property
    def follow_up(self) -> InvoiceFollowUp:
        return opened(self._follow_up, "the invoice follow-up")

    async def open(self) -> None:
        pool = await self.open_database("invoice_follow_up")
        await migrate_quota_plan(pool)
        plan = QuotaPlan(pool)
        source = await self.open_connections()
        # Read once: a connection added later is followed after a restart.
        apis = {
            c.tenant: TenantApis(
                basware=c.basware_client(),
                visma=c.visma_client(quota=plan.gate(c.visma.company_id, c.visma.client_id)),
                write_back=c.write_back,
            )
            for c in await source.list()
        }
        for tenant_apis in apis.values():
            self.on_close(tenant_apis.basware.aclose)
            self.on_close(tenant_apis.visma.aclose)
        store = InvoiceStore(pool, claim_timeout=self.settings.claim_timeout)
        self._follow_up = InvoiceFollowUp(
            store=store,
            apis=apis,
            publish=self._publish,
            lookups_per_second=self.settings.lookups_per_second,
        )

    async def begin(self) -> None:
        await super().begin()
        self.run_loop(
            "invoice-check", check_periodically(self.follow_up, self.settings.check_interval)
        )
