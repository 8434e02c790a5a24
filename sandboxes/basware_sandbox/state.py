"""All of the sandbox's in-memory state, and the Python API tests use to drive and inspect it.

Data belongs to a tenant (bwcid) on one virtual host, so the same tenant in EU and US, or in
production and test, has separate data, as on Basware's separate regional installations.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from basware_sandbox.config import ApiClient, Environment, Region, SandboxConfig, VirtualHost
from basware_sandbox.entities import ENTITY_APIS
from basware_sandbox.faults import FaultBook, FaultRule
from basware_sandbox.records import (
    Export,
    RequestLogEntry,
    RequestRecord,
    StoredDocument,
    StoredRecord,
    Subscription,
    Task,
    Upload,
    WebhookAttempt,
    content_hash,
    iso,
)
from basware_sandbox.rules import TargetIndex
from basware_sandbox.tokens import TokenIssuer


class SandboxClock:
    """Wall-clock time that tests can move forward, to expire tokens without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def _record_stores() -> dict[str, dict[str, StoredRecord]]:
    """One empty store per entity API path."""
    return {path: {} for path in ENTITY_APIS}


class Tenant(BaseModel):
    """One tenant's data on one host; a pydantic model so a saved state can hold it whole."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    host: VirtualHost
    bwcid: str
    company_codes: set[str]
    # What the API layer holds (GET answers these), per entity API path, by externalCode.
    records: dict[str, dict[str, StoredRecord]] = Field(default_factory=_record_stores)
    # What the target system (P2P) accepted.
    accepted: dict[str, dict[str, StoredRecord]] = Field(default_factory=_record_stores)
    # Derived from `accepted` (model_post_init), so never saved.
    index: TargetIndex = Field(default_factory=TargetIndex, exclude=True)
    requests: dict[str, RequestRecord] = Field(default_factory=dict)
    documents: dict[str, StoredDocument] = Field(default_factory=dict)
    uploads: dict[str, Upload] = Field(default_factory=dict)
    subscriptions: list[Subscription] = Field(default_factory=list)
    tasks: dict[str, Task] = Field(default_factory=dict)
    # DELETE-by-lastUpdated tasks: name -> number of records deleted.
    deletions: dict[str, int] = Field(default_factory=dict)
    # Quantity of each order line (by externalCode) matched by invoices so far.
    matched_quantities: Counter[str] = Field(default_factory=Counter)

    def model_post_init(self, context: Any, /) -> None:
        self.reindex()

    def reindex(self) -> None:
        """The index from the accepted records, in the order P2P accepted them (a restored
        tenant, or a record removed behind the client's back)."""
        self.index = TargetIndex()
        accepted = [
            (record, ENTITY_APIS[path])
            for path, by_code in self.accepted.items()
            for record in by_code.values()
        ]
        for record, api in sorted(accepted, key=lambda pair: pair[0].received_at):
            self.index.accept(api, record.body)


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        # Imported here because both need the state they belong to.
        from basware_sandbox.pipeline import Pipeline
        from basware_sandbox.webhooks import Notifier

        self.config = config
        self.clock = SandboxClock()
        self.issuer = TokenIssuer()
        self.hosts: dict[str, VirtualHost] = {h.name: h for h in config.hosts}
        self.port_hosts: dict[int, VirtualHost] = {}
        self.faults = FaultBook()
        self.pipeline = Pipeline(self)
        self.notifier = Notifier(self)
        self._users = 0
        # Moves on with every change a saved state keeps (--state-dir saves when it moved).
        self.revision = 0
        self.reset()

    def changed(self) -> None:
        self.revision += 1

    def reset(self) -> None:
        """Forgets records, requests, invoices, subscriptions, faults, logs, added clients and
        clock moves."""
        self.clients: dict[tuple[str, str], ApiClient] = {}
        self.tenants: dict[tuple[str, str], Tenant] = {}
        self.faults.remove()
        self.latency_ms: dict[tuple[Region | None, Environment | None], int] = {}
        self.counters: Counter[str] = Counter()
        self.request_log: deque[RequestLogEntry] = deque(maxlen=self.config.request_log_limit)
        self.webhook_log: list[WebhookAttempt] = []
        self.exports: dict[str, Export] = {}
        # The selection of each paged listing under way, by the id its token carries.
        self.listings: dict[str, list[Any]] = {}
        self.clock.offset = 0.0
        self.pipeline.clear()
        self.log_seq = 0
        for client in self.config.clients:
            self.register_client(client)

    # --- lifecycle: the pipeline worker and webhook sender run while any server is up ---

    async def start(self) -> None:
        self._users += 1
        if self._users == 1:
            self.pipeline.start()

    async def stop(self) -> None:
        self._users -= 1
        if self._users == 0:
            await self.pipeline.stop()
            await self.notifier.aclose()

    async def drain(self) -> None:
        """Waits until every accepted request is processed and every webhook delivery ended."""
        await self.pipeline.drain()
        await self.notifier.drain()

    def pause_processing(self) -> None:
        self.pipeline.pause()

    def resume_processing(self) -> None:
        self.pipeline.resume()

    # --- hosts, clients and tenants ---

    def host(
        self, region: Region | str, environment: Environment | str = Environment.PRODUCTION
    ) -> VirtualHost:
        return self.config.host(region, environment)

    def register_client(self, client: ApiClient) -> None:
        host = self.host(client.region, client.environment)
        self.clients[(host.name, client.client_id)] = client
        tenant = self.tenant(host, client.bwcid)
        tenant.company_codes.update(client.company_codes)

    def client(self, host: VirtualHost, client_id: str) -> ApiClient | None:
        return self.clients.get((host.name, client_id))

    def tenant(self, host: VirtualHost, bwcid: str) -> Tenant:
        key = (host.name, bwcid)
        if key not in self.tenants:
            self.tenants[key] = Tenant(host=host, bwcid=bwcid, company_codes=set())
        return self.tenants[key]

    def tenant_of(
        self,
        region: Region | str,
        bwcid: str,
        environment: Environment | str = Environment.PRODUCTION,
    ) -> Tenant:
        return self.tenant(self.host(region, environment), bwcid)

    # --- inspection ---

    def records(
        self,
        region: Region | str,
        bwcid: str,
        api: str,
        *,
        environment: Environment | str = Environment.PRODUCTION,
        accepted: bool = False,
    ) -> list[dict[str, Any]]:
        """The records of one entity API as the API layer (or, accepted=True, P2P) holds them."""
        tenant = self.tenant_of(region, bwcid, environment)
        store = tenant.accepted if accepted else tenant.records
        return [r.body for r in store[api].values()]

    # --- edits behind the client's back (someone working in Basware's own screens) ---

    def edit_record(
        self,
        region: Region | str,
        bwcid: str,
        api: str,
        external_code: str,
        fields: dict[str, Any],
        *,
        environment: Environment | str = Environment.PRODUCTION,
    ) -> dict[str, Any]:
        """Overwrites fields of a record wherever Basware holds it (API layer and P2P), as
        an edit in Basware would; KeyError for an unknown record."""
        tenant = self.tenant_of(region, bwcid, environment)
        found = [
            s[api][external_code]
            for s in (tenant.records, tenant.accepted)
            if external_code in s[api]
        ]
        if not found:
            raise KeyError(f"no {api} record {external_code}")
        for record in found:
            record.body.update(fields, lastUpdated=iso(self.clock.utcnow()))
            record.content_hash = content_hash(record.body)
        self.changed()
        return found[0].body

    def delete_record(
        self,
        region: Region | str,
        bwcid: str,
        api: str,
        external_code: str,
        *,
        environment: Environment | str = Environment.PRODUCTION,
    ) -> None:
        """Removes a record from the API layer and from P2P; KeyError for an unknown one."""
        tenant = self.tenant_of(region, bwcid, environment)
        removed = [s[api].pop(external_code, None) for s in (tenant.records, tenant.accepted)]
        if not any(removed):
            raise KeyError(f"no {api} record {external_code}")
        tenant.reindex()
        self.changed()

    def find_document(self, invoice_id: str) -> tuple[Tenant, StoredDocument]:
        for tenant in self.tenants.values():
            if invoice_id in tenant.documents:
                return tenant, tenant.documents[invoice_id]
        raise KeyError(f"no accounting document {invoice_id}")

    def documents(self) -> list[StoredDocument]:
        return [d for t in self.tenants.values() for d in t.documents.values()]

    # --- faults, latency, counters ---

    def add_fault(self, rule: FaultRule) -> FaultRule:
        return self.faults.add(rule)

    def clear_faults(self) -> None:
        self.faults.remove()

    def set_latency(
        self, ms: int, *, region: Region | None = None, environment: Environment | None = None
    ) -> None:
        """Adds `ms` to every API call of a host (all hosts when region is None), for benchmarks."""
        self.latency_ms[(region, environment)] = ms

    def latency_for(self, host: VirtualHost) -> int:
        return sum(
            ms
            for (region, environment), ms in self.latency_ms.items()
            if region in (None, host.region) and environment in (None, host.environment)
        )

    def log_request(self, **fields: Any) -> None:
        self.log_seq += 1
        entry = RequestLogEntry(seq=self.log_seq, **fields)
        self.request_log.append(entry)
        self.counters[f"{entry.method} {entry.route} {entry.status}"] += 1
        self.counters["total"] += 1
