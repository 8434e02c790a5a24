"""The sandbox's whole state, in memory, and the Python back door tests use in-process.

`SandboxState` holds companies, tokens, quotas, faults, webhooks and the request log.
`CompanyState` holds one company's records and is where every write goes, whether it comes
from the API, the HTTP back door or a test: the server sets lastModifiedDateTime (at the API's
millisecond precision) and the row version, and emits the webhook the change deserves.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from visma_sandbox.background import BackgroundJob
from visma_sandbox.config import CompanyInfo, SandboxConfig, SeedOptions
from visma_sandbox.entities import SPECS, EntityName, EntitySpec
from visma_sandbox.faults import FaultInjector, FaultRule
from visma_sandbox.pdf import invoice_pdf
from visma_sandbox.ratelimit import RateLimiter, RepeatGuard
from visma_sandbox.reference_data import demo_reference_records
from visma_sandbox.requestlog import RequestLog
from visma_sandbox.schemas import Dto, SupplierInvoice
from visma_sandbox.seed import demo_company_records
from visma_sandbox.store import EntityTable, StoredRecord
from visma_sandbox.timefmt import now_ms, to_precision
from visma_sandbox.tokens import TokenIssuer
from visma_sandbox.webhooks import WebhookHub

PageAction = Callable[["CompanyState"], None]


@dataclass(slots=True)
class PageHook:
    entity: EntityName
    after_page: int
    action: PageAction


def _webhook_event(spec: EntitySpec, previous: Dto | None, current: Dto) -> str | None:
    """The event a write emits (the event table of docs/visma-net.md §10.1)."""
    status_changed = previous is not None and getattr(previous, "status", None) != getattr(
        current, "status", None
    )
    if spec.name is EntityName.SUPPLIER:
        return "Created" if previous is None else "Updated"
    if spec.name is EntityName.PURCHASE_ORDER:
        return "Status Changed" if status_changed else "Changed"
    if spec.name is EntityName.SUPPLIER_INVOICE:
        return "Status Changed" if status_changed else None
    return None


class CompanyState:
    def __init__(self, info: CompanyInfo, hub: WebhookHub) -> None:
        self.info = info
        self._hub = hub
        self.tables = {name: EntityTable(spec) for name, spec in SPECS.items()}
        self._row_version = 0
        self._page_hooks: list[PageHook] = []
        # Attachment id -> the invoice it belongs to, and the bytes served for it.
        self.attachment_owner: dict[str, tuple[str, ...]] = {}
        self.attachment_content: dict[str, bytes] = {}
        # erp-api-background jobs by id (visible to this company only).
        self.background: dict[str, BackgroundJob] = {}

    @property
    def company_id(self) -> str:
        return self.info.company_id

    def table(self, entity: EntityName | str) -> EntityTable:
        return self.tables[EntityName(str(entity).lower())]

    def get(self, entity: EntityName | str, key: str) -> StoredRecord | None:
        table = self.table(entity)
        return table.get(table.spec.parse_key(key))

    @property
    def row_version(self) -> int:
        """The last row version given out: every write takes the next one."""
        return self._row_version

    def _next_row_version(self) -> int:
        self._row_version += 1
        return self._row_version

    def _validate(self, spec: EntitySpec, record: Dto | Mapping[str, Any]) -> Dto:
        return record if isinstance(record, spec.schema) else spec.schema.model_validate(record)

    def _store(self, table: EntityTable, record: Dto, at: datetime | None) -> StoredRecord:
        key = table.spec.key_of(record)
        previous = table.get(key)
        stamp = to_precision(at) if at is not None else now_ms()
        stored = StoredRecord(
            key=key,
            record=record,
            last_modified=stamp,
            created=previous.created if previous else stamp,
            row_version=self._next_row_version(),
        )
        table.put(stored)
        self._index_attachments(stored)
        event = _webhook_event(table.spec, previous.record if previous else None, record)
        if event and table.spec.webhook_entity and self.info.webhooks_enabled:
            self._hub.emit(
                company_id=self.company_id,
                tenant_id=self.info.tenant_id,
                entity=table.spec.webhook_entity,
                event=event,
                key=table.spec.key_text(key),
            )
        return stored

    def _index_attachments(self, stored: StoredRecord) -> None:
        if isinstance(stored.record, SupplierInvoice):
            for attachment in stored.record.attachments:
                self.attachment_owner[attachment.id] = stored.key

    def put(
        self,
        entity: EntityName | str,
        record: Dto | Mapping[str, Any],
        *,
        at: datetime | None = None,
    ) -> StoredRecord:
        """Creates or replaces a record; the server stamps it (or uses `at`)."""
        table = self.table(entity)
        return self._store(table, self._validate(table.spec, record), at)

    def update(
        self,
        entity: EntityName | str,
        key: str,
        changes: Mapping[str, Any],
        *,
        at: datetime | None = None,
    ) -> StoredRecord:
        """Changes fields (API names, e.g. {"status": "OnHold"}) of an existing record."""
        table = self.table(entity)
        stored = table.get(table.spec.parse_key(key))
        if stored is None:
            raise KeyError(f"{table.spec.name} {key} does not exist")
        merged = {**stored.record.model_dump(by_alias=True, exclude_none=True), **changes}
        return self._store(table, table.spec.schema.model_validate(merged), at)

    def delete(self, entity: EntityName | str, key: str) -> bool:
        table = self.table(entity)
        return table.delete(table.spec.parse_key(key)) is not None

    def touch(
        self,
        entity: EntityName | str,
        keys: Iterable[str] | None = None,
        *,
        at: datetime | None = None,
    ) -> datetime:
        """Gives the records (all when `keys` is None) one shared lastModifiedDateTime.

        Like an ERP upgrade's bulk touch: content unchanged, no webhook. Returns the stamp.
        """
        table = self.table(entity)
        stamp = to_precision(at) if at is not None else now_ms()
        chosen = [r.key for r in table] if keys is None else [table.spec.parse_key(k) for k in keys]
        for key in chosen:
            stored = table.get(key)
            if stored is None:
                raise KeyError(f"{table.spec.name} {table.spec.key_text(key)} does not exist")
            table.put(
                StoredRecord(
                    key=key,
                    record=stored.record,
                    last_modified=stamp,
                    created=stored.created,
                    row_version=self._next_row_version(),
                    content_json=stored.content_json,
                )
            )
        return stamp

    def load(
        self, entity: EntityName | str, records: Iterable[Dto], *, at: datetime | None = None
    ) -> int:
        """Bulk insert without webhooks (seeding): one index sort for any number of rows."""
        table = self.table(entity)
        stamp = to_precision(at) if at is not None else now_ms()
        batch = []
        for record in records:
            stored = StoredRecord(
                key=table.spec.key_of(record),
                record=record,
                last_modified=stamp,
                created=stamp,
                row_version=self._next_row_version(),
            )
            self._index_attachments(stored)
            batch.append(stored)
        table.load(batch)
        return len(batch)

    def restore(
        self, rows: Mapping[EntityName, Iterable[StoredRecord]], *, row_version: int
    ) -> None:
        """Puts saved records back as they were: their stamps and row versions, no webhooks."""
        for entity, stored_rows in rows.items():
            batch = list(stored_rows)
            for stored in batch:
                self._index_attachments(stored)
            self.tables[entity].load(batch)
        self._row_version = row_version

    def after_page(self, entity: EntityName | str, page_number: int, action: PageAction) -> None:
        """Runs `action` once, right after the next list of `entity` has served that page."""
        self._page_hooks.append(PageHook(EntityName(str(entity).lower()), page_number, action))

    def run_page_hooks(self, entity: EntityName, page_number: int) -> None:
        due = [h for h in self._page_hooks if h.entity is entity and h.after_page == page_number]
        for hook in due:
            self._page_hooks.remove(hook)
            hook.action(self)

    def attachment(self, attachment_id: str) -> bytes | None:
        """The file behind an attachment id: uploaded bytes, or a PDF rendered from the invoice."""
        content = self.attachment_content.get(attachment_id)
        if content is not None:
            return content
        owner = self.attachment_owner.get(attachment_id)
        stored = self.tables[EntityName.SUPPLIER_INVOICE].get(owner) if owner else None
        if stored is None or not isinstance(stored.record, SupplierInvoice):
            return None
        content = invoice_pdf(stored.record, self.info.name)
        self.attachment_content[attachment_id] = content
        return content

    def clear(self) -> None:
        for table in self.tables.values():
            table.clear()
        self._page_hooks.clear()
        self.attachment_owner.clear()
        self.attachment_content.clear()
        self.background.clear()


class SandboxState:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.settings = self.config.settings.model_copy(deep=True)
        self.clients = {client.client_id: client for client in self.config.clients}
        self.companies: dict[str, CompanyState] = {}
        self.tokens = TokenIssuer()
        self.rate_limits = RateLimiter()
        self.repeat_guard = RepeatGuard()
        self.rng = random.Random(self.config.seed.seed)
        self.faults = FaultInjector(self.rng)
        self.log = RequestLog()
        self.webhooks = WebhookHub(lambda: self.settings.webhook_delivery, self.changed)
        # Moves on with every change a saved state keeps (--state-dir saves when it moved).
        self.revision = 0

    def changed(self) -> None:
        self.revision += 1

    def company(self, company_id: str) -> CompanyState:
        return self.companies[company_id]

    def add_company(self, info: CompanyInfo) -> CompanyState:
        company = CompanyState(info, self.webhooks)
        self.companies[info.company_id] = company
        return company

    def tenant(self, tenant_id: str) -> tuple[CompanyState, bool] | None:
        """The company a tenant id stands for, and whether the tenant holds an ERP licence."""
        for company in self.companies.values():
            if company.info.tenant_id == tenant_id:
                return company, True
            if company.info.customer_tenant_id == tenant_id:
                return company, False
        return None

    def seed(self, options: SeedOptions | None = None) -> None:
        """Adds `options.companies` demo companies filled with Nordic demo data."""
        options = options or self.config.seed
        rng = random.Random(options.seed)
        for number in range(len(self.companies) + 1, len(self.companies) + options.companies + 1):
            company = self.add_company(CompanyInfo.demo(number))
            for entity, records in demo_company_records(company.info, options, rng).items():
                company.load(entity, records)
            for entity, records in demo_reference_records(company.info).items():
                company.load(entity, records)

    def reset(self) -> None:
        """Back to a freshly seeded sandbox: records, tokens, quotas, faults, logs, webhooks."""
        self.companies.clear()
        self.tokens.clear()
        self.rate_limits.clear()
        self.repeat_guard.clear()
        self.faults.clear()
        self.log.clear()
        self.webhooks.clear()
        self.settings = self.config.settings.model_copy(deep=True)
        self.seed()

    def add_fault(self, rule: FaultRule) -> int:
        return self.faults.add(rule)

    def expire_tokens(self, *, tenant_id: str | None = None, client_id: str | None = None) -> int:
        return self.tokens.end(revoke=False, tenant_id=tenant_id, client_id=client_id)

    def revoke_tokens(self, *, tenant_id: str | None = None, client_id: str | None = None) -> int:
        return self.tokens.end(revoke=True, tenant_id=tenant_id, client_id=client_id)
