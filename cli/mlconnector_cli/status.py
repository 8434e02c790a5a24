"""`mlconnector status`: is every part up, how far behind is it, and how far is each sync.

Everything comes from where it lives: each service's `/readyz` and `/metrics` (the services of
the running stack's `stack.json`), and PostgreSQL (record states from the audit log, poll
cursors, connection names). A service that does not answer is shown down, not guessed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError

from audit_store.status import RecordState, results_since, state_summaries
from mlconnector.connection_store.store import connection_names
from mlconnector.contracts import Entity
from mlconnector.home import StackEndpoint, StackFile
from mlconnector.readiness import ReadinessReport
from mlconnector_cli.progress import EntityProgress, eta_text
from visma_reader.cursor_store import cursor_states

RATE_WINDOW = timedelta(minutes=1)
HTTP_TIMEOUT_SECONDS = 3.0


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


class StatusReport(BaseModel):
    services: list[ServiceHealth]
    lag: list[LagRow]
    entities: list[EntityStatus]
    results_last_minute: int
    now: datetime


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


async def gather_status(database_url: str, stack: StackFile | None) -> StatusReport:
    services = stack.services if stack else []
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
        health = await asyncio.gather(*(service_health(http, s) for s in services))
        scraped = await asyncio.gather(*(scrape(http, s) for s in services))
    samples = [sample for found in scraped for sample in found]
    now = datetime.now(UTC)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        summaries = await state_summaries(conn)
        cursors = await cursor_states(conn)
        names = await connection_names(conn)
        recent = await results_since(conn, now - RATE_WINDOW)
    finally:
        await conn.close()
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
    )


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:  # Visma's zone-less frame: shown as it is
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min ago"
    return f"{seconds / 3600:.1f}h ago"


def render_status(report: StatusReport) -> str:
    from mlconnector_cli.audit import render_table

    lines: list[str] = []
    if report.services:
        lines.append("services")
        rows = [
            [
                s.name,
                "ready" if s.ready else ("DOWN" if s.ready is None else "NOT READY"),
                s.url,
                s.detail,
            ]
            for s in report.services
        ]
        lines.append(_indent(render_table(["SERVICE", "STATE", "URL", "DETAIL"], rows)))
    else:
        lines.append("services: no running stack found (no stack.json); not checked")
    if report.lag:
        lines.append("consumer lag")
        rows = [[r.group, r.topic, str(r.lag)] for r in report.lag]
        lines.append(_indent(render_table(["GROUP", "TOPIC", "LAG"], rows)))
    if not report.entities:
        lines.append("records: none yet")
        return "\n".join(lines)
    lines.append("records")
    headers = [
        "CONNECTION", "ENTITY", "DONE", "DELIVERED", "PENDING", "PARKED", "REJECTED",
        "FAILED", "LAST POLL", "LAST CHANGE READ", "OLDEST PENDING",
    ]  # fmt: skip
    rows = []
    for e in report.entities:
        p = e.progress
        percent = 100.0 * p.settled / e.total if e.total else 100.0
        rows.append(
            [
                f"{e.connection} ({e.tenant})",
                e.entity,
                f"{percent:.0f}% of {e.total}",
                str(p.delivered),
                str(p.pending),
                str(p.parked),
                str(p.rejected),
                str(p.failed),
                _age(e.last_poll_at, report.now),
                _age(e.last_change_read_at, report.now),
                _age(e.oldest_pending_at, report.now),
            ]
        )
    lines.append(_indent(render_table(headers, rows)))
    remaining = sum(e.total - e.progress.settled for e in report.entities)
    rate = report.results_last_minute / RATE_WINDOW.total_seconds()
    if remaining > 0:
        lines.append(
            f"backfill: {remaining} records to go, {rate:.1f} results/s over the last minute, "
            f"ETA {eta_text(remaining, rate)}"
        )
    else:
        lines.append("backfill: caught up, every known record has its answer from Basware")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
