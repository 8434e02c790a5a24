"""The writer's PostgreSQL state, one store per thing it holds: what Basware accepted
(accepted.py), requests still processing (pending.py), upload claims (uploads.py), parked
changes (parked.py) and live instances (instances.py); the request budget has its own
module, shared with the reconciler (mlconnector/basware/rate_budget.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import asyncpg

from basware_writer.domain import KnownState, RecordRef
from basware_writer.stores.accepted import AcceptedStore
from basware_writer.stores.instances import InstanceRegistry
from basware_writer.stores.parked import ParkedStore
from basware_writer.stores.pending import PendingStore
from basware_writer.stores.uploads import UploadStore

__all__ = [
    "AcceptedStore",
    "InstanceRegistry",
    "ParkedStore",
    "PendingStore",
    "UploadStore",
    "WriterStores",
]


@dataclass(frozen=True)
class WriterStores:
    """Every store of one writer process, shared by all its tenants."""

    accepted: AcceptedStore
    pending: PendingStore
    uploads: UploadStore
    parked: ParkedStore
    instances: InstanceRegistry

    @classmethod
    def of(cls, pool: asyncpg.Pool, instance: str) -> WriterStores:
        accepted = AcceptedStore(pool)
        return cls(
            accepted=accepted,
            pending=PendingStore(pool, accepted),
            uploads=UploadStore(pool, accepted),
            parked=ParkedStore(pool),
            instances=InstanceRegistry(pool, instance),
        )

    @property
    def owner(self) -> str:
        """This instance's name in claims."""
        return self.instances.instance

    async def known_state(
        self,
        tenant: str,
        refs: Sequence[RecordRef],
        suppliers: Collection[str],
        releasing: Collection[str],
    ) -> KnownState:
        """What Basware has and what waits, for these records and keys; keys being released
        do not count as parked."""
        return KnownState(
            accepted=await self.accepted.lookup(tenant, refs),
            vendors=frozenset(await self.accepted.vendors(tenant, suppliers)),
            in_flight=frozenset(await self.pending.in_flight(tenant, refs)),
            waiting=frozenset(await self.pending.waiting_keys(tenant, suppliers)),
            parked=frozenset(await self.parked.parked_keys(tenant, suppliers) - set(releasing)),
            inactive=frozenset(await self.accepted.inactive(tenant, refs)),
        )
