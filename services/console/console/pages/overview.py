"""Overview: per connection and entity where the sync stands, each Visma company's quota,
the services, and 24 h charts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from console.access import Role
from console.charts import Chart, ChartPoint, ChartSeries, per_minute, svg
from console.sampler import CategoryCount, SyncSample, latest_sample
from console.users import Session
from console.web import Access, now, page, state_of
from mlconnector.reconcile_status import LatestReconcile
from mlconnector.sync_status import LagRow, QuotaStatus, ServiceHealth, eta_text

router = APIRouter()
Viewer = Annotated[Session, Depends(Access(Role.VIEWER))]
CHART_SPAN = timedelta(hours=24)


class OverviewRow(BaseModel):
    connection: str
    tenant: str
    entity: str
    total: int
    delivered: int
    parked: int
    pending: int
    rejected: int
    failed: int
    percent_done: float
    # Backfill ETA at the current rate ("?" without one, "0s" when done).
    eta: str
    # Freshness: the oldest change Basware has not accepted yet, and the last good poll.
    oldest_pending_at: datetime | None
    last_poll_at: datetime | None
    last_change_read_at: datetime | None


class QuotaRow(BaseModel):
    """One Visma company's quota window (docs/visma-net.md §8.3), as `mlconnector status`
    shows it."""

    connection: str
    company_id: str
    used: int
    limit: int | None
    live_reserve: int
    # None: the window is over (the next call opens one) or not known yet.
    resets_at: datetime | None
    # When bulk work (a backfill's attachment downloads) goes on, while it waits.
    bulk_resumes_at: datetime | None
    invoices_left: int
    backfill_eta: datetime | None


def quota_row(quota: QuotaStatus) -> QuotaRow:
    s = quota.standing
    return QuotaRow(
        connection=quota.connection,
        company_id=s.company_id,
        used=s.used_now,
        limit=s.quota_limit,
        live_reserve=s.reserve,
        resets_at=None if s.window_over else s.resets_at,
        bulk_resumes_at=s.resumes_at,
        invoices_left=quota.invoices_left,
        backfill_eta=quota.eta,
    )


class Overview(BaseModel):
    # When the figures were sampled; None before the first sample.
    taken_at: datetime | None
    rows: list[OverviewRow]
    services: list[ServiceHealth]
    lag: list[LagRow]
    results_per_second: float
    failures: list[CategoryCount]
    charts: list[Chart]
    # The latest reconcile of each connection (README: "Reconcile").
    reconciles: list[LatestReconcile] = []
    quotas: list[QuotaRow] = []


def overview_rows(sample: SyncSample) -> list[OverviewRow]:
    report = sample.report
    rate = report.rate_per_second
    return [
        OverviewRow(
            connection=e.connection,
            tenant=e.tenant,
            entity=e.entity,
            total=e.total,
            delivered=e.progress.delivered,
            parked=e.progress.parked,
            pending=e.progress.pending,
            rejected=e.progress.rejected,
            failed=e.progress.failed,
            percent_done=e.percent_done,
            eta=eta_text(e.total - e.progress.settled, rate),
            oldest_pending_at=e.oldest_pending_at,
            last_poll_at=e.last_poll_at,
            last_change_read_at=e.last_change_read_at,
        )
        for e in report.entities
    ]


async def charts(pool: asyncpg.Pool, since: datetime) -> list[Chart]:
    minutes = await pool.fetch(
        "SELECT minute, entity, delivered, oldest_pending_seconds FROM console_minutes"
        " WHERE minute >= $1 ORDER BY entity, minute",
        since,
    )
    failures = await pool.fetch(
        "SELECT minute, category, records FROM console_failure_minutes"
        " WHERE minute >= $1 ORDER BY category, minute",
        since,
    )
    delivered: dict[str, list[ChartPoint]] = {}
    freshness: dict[str, list[ChartPoint]] = {}
    for row in minutes:
        delivered.setdefault(row["entity"], []).append(
            ChartPoint(at=row["minute"], value=row["delivered"])
        )
        if row["oldest_pending_seconds"] is not None:
            freshness.setdefault(row["entity"], []).append(
                ChartPoint(at=row["minute"], value=row["oldest_pending_seconds"] / 60)
            )
    by_category: dict[str, list[ChartPoint]] = {}
    for row in failures:
        by_category.setdefault(row["category"], []).append(
            ChartPoint(at=row["minute"], value=row["records"])
        )
    return [
        Chart(
            title="Records delivered per minute, by entity",
            unit="records/min",
            series=[ChartSeries(label=e, points=per_minute(p)) for e, p in delivered.items()],
        ),
        Chart(
            title="Freshness: age of the oldest change Basware has not accepted",
            unit="minutes",
            series=[ChartSeries(label=e, points=p) for e, p in freshness.items()],
        ),
        Chart(
            title="Failed and rejected records, by category",
            unit="records",
            series=[ChartSeries(label=c, points=p) for c, p in by_category.items()],
        ),
    ]


async def overview(request: Request) -> Overview:
    pool = state_of(request).pool
    sample = await latest_sample(pool)
    drawn = await charts(pool, now() - CHART_SPAN)
    if sample is None:
        return Overview(
            taken_at=None, rows=[], services=[], lag=[], results_per_second=0.0, failures=[],
            charts=drawn,
        )  # fmt: skip
    return Overview(
        taken_at=sample.taken_at,
        rows=overview_rows(sample),
        services=sample.report.services,
        lag=sample.report.lag,
        results_per_second=sample.report.rate_per_second,
        failures=sample.failures,
        charts=drawn,
        reconciles=sample.report.reconciles,
        quotas=[quota_row(q) for q in sample.report.quotas],
    )


@router.get("/", include_in_schema=False)
async def home(request: Request, session: Viewer) -> Response:
    return RedirectResponse("/overview", 303)


@router.get("/overview", include_in_schema=False)
async def overview_page(request: Request, session: Viewer) -> Response:
    found = await overview(request)
    end = now()
    return page(
        request,
        "overview.html",
        {
            "overview": found,
            "charts": [(c, svg(c, end - CHART_SPAN, end)) for c in found.charts],
            "refresh": state_of(request).settings.refresh_seconds,
            "now": end,
        },
    )


@router.get("/api/overview", response_model=Overview, tags=["overview"])
async def overview_api(request: Request, session: Viewer) -> Overview:
    """Per connection and entity: counts per state, percent done and ETA, freshness; each
    service's readiness, consumer lag, failures per category, the 24 h chart series, the
    latest reconcile of each connection, and each Visma company's quota window."""
    return await overview(request)
