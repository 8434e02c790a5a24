"""Where each sync stands: every service up or not, consumer lag, per connection and
entity the records per state, freshness and backfill progress, and per Visma company its
quota: the calls used, when the window resets, and when the backfill can be done.

Everything comes from where it lives: each service's `/readyz` and `/metrics`, and
PostgreSQL (record states from the audit log, poll cursors, connection names). A service
that does not answer is shown down, not guessed. `mlconnector status` and the console's
Overview both read it from here.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError

from mlconnector.audit.status import RecordState, results_since, state_summaries
from mlconnector.audit.stored import Connection
from mlconnector.connection_store.store import connection_names
from mlconnector.contracts import Entity
from mlconnector.home import StackEndpoint
from mlconnector.readiness import ReadinessReport
from mlconnector.reconcile_status import LatestReconcile, latest_reconciles
from mlconnector.visma.quota_plan import QuotaStanding, backfill_eta, read_quota_plans

RATE_WINDOW = timedelta(minutes=1)
HTTP_TIMEOUT_SECONDS = 3.0


class EntityProgress(BaseModel):
    total: int = 0
    pending: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    parked: int = 0
    exception: int = 0
    malformed: int = 0

    @property
    def settled(self) -> int:
        """Records with a final answer (parked ones still wait for theirs)."""
        return self.delivered + self.rejected + self.failed + self.exception + self.malformed


def eta_text(remaining: int, rate: float | None) -> str:
    if remaining <= 0:
        return "0s"
    if not rate:
        return "?"
    seconds = remaining / rate
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


class ServiceHealth(BaseModel):
    name: str
    url: str
    ready: bool | None  # None: it did not answer at all
    detail: str


class MetricSample(BaseModel):
    name: str
    labels: dict[str, str]
    value: float


class LagRow(BaseModel):
    group: str
    topic: str
    lag: int


class CursorState(BaseModel):
    tenant: str
    stream: str
    high_water: datetime
    # When the cursor last moved: the last poll that found something new.
    moved_at: datetime
    full_scan_at: datetime | None


async def cursor_states(conn: Connection) -> list[CursorState]:
    """Every poll cursor visma-reader keeps; an empty list before the reader first ran."""
    if await conn.fetchval("SELECT to_regclass('visma_poll_cursor') IS NULL"):
        return []
    rows = await conn.fetch(
        "SELECT tenant, entity AS stream, high_water, updated_at AS moved_at, full_scan_at"
        " FROM visma_poll_cursor ORDER BY tenant, entity"
    )
    return [CursorState.model_validate(dict(r)) for r in rows]


class EntityStatus(BaseModel):
    tenant: str
    connection: str
    entity: str
    progress: EntityProgress
    # The backfill's own count of what Visma holds (its totalCount), while the reader knows it.
    visma_total: int | None
    last_poll_at: datetime | None
    last_change_read_at: datetime | None
    oldest_pending_at: datetime | None

    @property
    def total(self) -> int:
        known = self.progress.settled + self.progress.pending + self.progress.parked
        return max(known, self.visma_total or 0)

    @property
    def percent_done(self) -> float:
        return 100.0 * self.progress.settled / self.total if self.total else 100.0


class QuotaStatus(BaseModel):
    """One company's Visma quota and what the backfill still needs of it: an invoice to go
    costs one attachment download (docs/visma-net.md §8.1)."""

    connection: str
    standing: QuotaStanding
    invoices_left: int

    @property
    def eta(self) -> datetime | None:
        return backfill_eta(self.standing, self.invoices_left)


def quota_statuses(
    plans: Sequence[QuotaStanding], entities: Sequence[EntityStatus], names: dict[str, str]
) -> list[QuotaStatus]:
    left: dict[str, int] = defaultdict(int)
    for e in entities:
        if e.entity == Entity.SUPPLIER_INVOICE.value:
            left[e.tenant] += e.total - e.progress.settled
    return [
        QuotaStatus(
            connection=names.get(p.company_id, "-"),
            standing=p,
            invoices_left=left.get(p.company_id, 0),
        )
        for p in plans
    ]


class StatusReport(BaseModel):
    services: list[ServiceHealth]
    lag: list[LagRow]
    entities: list[EntityStatus]
    results_last_minute: int
    now: datetime
    # The latest reconcile of each connection.
    reconciles: list[LatestReconcile] = []
    quotas: list[QuotaStatus] = []

    @property
    def rate_per_second(self) -> float:
        return self.results_last_minute / RATE_WINDOW.total_seconds()

    @property
    def remaining(self) -> int:
        return sum(e.total - e.progress.settled for e in self.entities)


async def service_health(http: httpx.AsyncClient, service: StackEndpoint) -> ServiceHealth:
    try:
        answer = await http.get(f"{service.url}/readyz")
    except httpx.TransportError as error:
        return ServiceHealth(
            name=service.name, url=service.url, ready=None, detail=type(error).__name__
        )
    try:
        report = ReadinessReport.model_validate_json(answer.content)
    except ValidationError:
        return ServiceHealth(
            name=service.name, url=service.url, ready=False, detail=f"HTTP {answer.status_code}"
        )
    failing = [f"{name}: {why}" for name, why in report.checks.items() if why != "ok"]
    return ServiceHealth(
        name=service.name, url=service.url, ready=report.ready, detail="; ".join(failing)
    )


async def scrape(http: httpx.AsyncClient, service: StackEndpoint) -> list[MetricSample]:
    try:
        answer = await http.get(f"{service.url}/metrics")
    except httpx.TransportError:
        return []
    return [
        MetricSample(name=sample.name, labels=dict(sample.labels), value=sample.value)
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    ]


def lag_rows(samples: list[MetricSample]) -> list[LagRow]:
    total: defaultdict[tuple[str, str], float] = defaultdict(float)
    for sample in samples:
        if sample.name == "mlc_consumer_lag":
            total[(sample.labels["group"], sample.labels["topic"])] += sample.value
    return [LagRow(group=g, topic=t, lag=int(v)) for (g, t), v in sorted(total.items())]


def reader_gauge(samples: list[MetricSample], name: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["tenant"], s.labels["entity"]): s.value
        for s in samples
        if s.name == name and "tenant" in s.labels
    }


async def sync_status(
    conn: Connection, services: Sequence[StackEndpoint], *, now: datetime | None = None
) -> StatusReport:
    """The whole picture, from the services' endpoints and the database behind `conn`."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
        health = await asyncio.gather(*(service_health(http, s) for s in services))
        scraped = await asyncio.gather(*(scrape(http, s) for s in services))
    samples = [sample for found in scraped for sample in found]
    now = now or datetime.now(UTC)
    summaries = await state_summaries(conn)
    cursors = await cursor_states(conn)
    names = await connection_names(conn)
    recent = await results_since(conn, now - RATE_WINDOW)
    totals = reader_gauge(samples, "mlc_reader_backfill_total_records")
    last_polls = reader_gauge(samples, "mlc_reader_last_success_timestamp_seconds")
    # Purchase receipts have a cursor of their own but no records: they ride on their orders.
    entities = {e.value for e in Entity}
    moved = {(c.tenant, c.stream): c.moved_at for c in cursors if c.stream in entities}
    rows: dict[tuple[str, str], EntityStatus] = {}
    keys = {(s.tenant, s.entity) for s in summaries} | set(moved)
    for tenant, entity in sorted(keys):
        poll = last_polls.get((tenant, entity))
        total = totals.get((tenant, entity))
        rows[(tenant, entity)] = EntityStatus(
            tenant=tenant,
            connection=names.get(tenant, "-"),
            entity=entity,
            progress=EntityProgress(),
            visma_total=int(total) if total is not None else None,
            last_poll_at=datetime.fromtimestamp(poll, UTC) if poll else None,
            last_change_read_at=moved.get((tenant, entity)),
            oldest_pending_at=None,
        )
    for summary in summaries:
        row = rows[(summary.tenant, summary.entity)]
        state = summary.state.value
        setattr(row.progress, state, getattr(row.progress, state) + summary.records)
        if summary.state is RecordState.PENDING:
            row.oldest_pending_at = summary.oldest_change_at
    return StatusReport(
        services=list(health),
        lag=lag_rows(samples),
        entities=list(rows.values()),
        results_last_minute=recent,
        now=now,
        reconciles=await latest_reconciles(conn),
        quotas=quota_statuses(await read_quota_plans(conn), list(rows.values()), names),
    )


async def gather_status(database_url: str, services: Sequence[StackEndpoint]) -> StatusReport:
    """`sync_status` on a connection of its own (the CLI's one-shot use)."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return await sync_status(conn, services)
    finally:
        await conn.close()
