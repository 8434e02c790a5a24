"""One executor per connection, with its own Basware and Visma clients and backoff; a changed
connection (rotated secret, new region) gets fresh ones."""

from __future__ import annotations

from dataclasses import dataclass

from basware_writer.backoff import BaswareBackoff
from basware_writer.basware_calls import TenantBasware
from basware_writer.executor import TenantExecutor
from basware_writer.invoice_pdfs import InvoicePdfMaker
from basware_writer.planner import Destination
from basware_writer.settings import WriterSettings
from basware_writer.stores import WriterStores
from mlconnector.basware.client import BaswareClient
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.connections import Connection, ConnectionNotFound, ConnectionSource, find_tenant
from mlconnector.contracts import REFERENCE_ENTITIES
from mlconnector.http_transport import AiohttpTransport
from mlconnector.visma.client import VismaClient
from mlconnector.visma.quota_plan import QuotaPlan


@dataclass(frozen=True)
class TenantWriter:
    connection: Connection
    executor: TenantExecutor
    basware: BaswareClient
    visma: VismaClient

    async def aclose(self) -> None:
        await self.basware.aclose()
        await self.visma.aclose()


def tenant_writer(
    connection: Connection,
    stores: WriterStores,
    budget: RateBudget,
    quota: QuotaPlan,
    settings: WriterSettings,
) -> TenantWriter:
    basware = connection.basware_client(AiohttpTransport())
    credentials = connection.visma
    visma = connection.visma_client(
        AiohttpTransport(), quota.gate(credentials.company_id, credentials.client_id)
    )

    async def region() -> str:
        return (await basware.region()).value

    backoff = BaswareBackoff(
        connection.tenant, region, budget, settings.backoff(), settings.requests_in_flight
    )
    destination = Destination(
        connection=connection.name,
        company_code=connection.basware_company_code,
        receiving_email=connection.basware_receiving_email,
        layout=connection.coding,
        synced=REFERENCE_ENTITIES & frozenset(connection.entities),
    )
    executor = TenantExecutor(
        connection.tenant,
        destination,
        TenantBasware(connection.tenant, basware, backoff),
        InvoicePdfMaker(visma),
        stores,
        settings,
    )
    return TenantWriter(connection=connection, executor=executor, basware=basware, visma=visma)


class Tenants:
    def __init__(
        self,
        source: ConnectionSource,
        stores: WriterStores,
        budget: RateBudget,
        quota: QuotaPlan,
        settings: WriterSettings,
    ) -> None:
        self._source = source
        self._stores = stores
        self._budget = budget
        self._quota = quota
        self._settings = settings
        self._writers: dict[str, TenantWriter] = {}
        self._retired: list[TenantWriter] = []

    async def executor(self, tenant: str) -> TenantExecutor | None:
        """The executor of the connection of this Visma company; None when there is none."""
        try:
            connection = await find_tenant(self._source, tenant)
        except ConnectionNotFound:
            return None
        writer = self._writers.get(connection.name)
        if writer is None or writer.connection != connection:
            if writer is not None:
                # Its clients may still serve a follow-up round: closed at shutdown.
                self._retired.append(writer)
            writer = self._writers[connection.name] = tenant_writer(
                connection, self._stores, self._budget, self._quota, self._settings
            )
        return writer.executor

    async def aclose(self) -> None:
        for writer in [*self._writers.values(), *self._retired]:
            await writer.aclose()
        self._writers.clear()
        self._retired.clear()
