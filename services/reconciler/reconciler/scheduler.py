"""Runs each connection's reconcile when its schedule says so (mlconnector.schedule),
counted from the connection's last run in PostgreSQL, so a restart does not run it again
early; a connection never reconciled is due one schedule after the service started (not at
once: a new stack would reconcile before its first sync). A run that cannot compare is stored
with its reason and tried at the next due time. With RECONCILER_HEAL, a run also re-publishes
what is missing or different (heal.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import httpx
from pydantic import ValidationError

from mlconnector.audit.replay import ReplayPublisher
from mlconnector.basware.errors import BaswareError
from mlconnector.basware.rate_budget import RateBudget
from mlconnector.connections import Connection, ConnectionSource
from mlconnector.schedule import is_due
from mlconnector.visma.errors import VismaError
from mlconnector.visma.quota_plan import QuotaPlan
from reconciler import metrics
from reconciler.heal import heal
from reconciler.reading import NoCompanyCode, budget_pace, reconcile_connection
from reconciler.settings import ReconcilerSettings
from reconciler.store import last_runs, save_failure, save_report
from reconciler.uploads import note_uploads

log = logging.getLogger(__name__)

# What ends one run (stored as its failure), not the scheduler; a PostgreSQL error too (the
# budget's table is basware-writer's: it exists once the writer has run).
RUN_FAILURES = (
    VismaError,
    BaswareError,
    NoCompanyCode,
    httpx.HTTPError,
    ValidationError,
    OSError,
    asyncpg.PostgresError,
)


async def reconcile_and_store(
    pool: asyncpg.Pool,
    budget: RateBudget,
    connection: Connection,
    publisher: ReplayPublisher | None = None,
) -> None:
    """One run, stored; with a publisher, what is missing or different is healed."""
    started = datetime.now(UTC)
    try:
        quota = QuotaPlan(pool).gate(connection.visma.company_id, connection.visma.client_id)
        async with (
            connection.visma_client(quota=quota) as visma,
            connection.basware_client() as basware,
        ):
            pace = await budget_pace(budget, connection, basware)
            report = await reconcile_connection(connection, visma, basware, pace)
            if publisher is not None:
                async with pool.acquire() as db:
                    healed = await heal(report, visma, db, publisher)
                log.info("%s: re-published %d records", connection.name, len(healed))
    except RUN_FAILURES as error:
        log.warning("reconcile of %s failed: %s", connection.name, error)
        async with pool.acquire() as db:
            await save_failure(db, connection.name, connection.tenant, started, str(error))
        metrics.observe_failure(connection.name)
        return
    async with pool.acquire() as db:
        report = await note_uploads(db, report)
        await save_report(db, report)
    metrics.observe(report)
    log.info(
        "reconciled %s: %s",
        connection.name,
        "all equal" if report.all_equal else "differences found",
    )


async def run_due(
    pool: asyncpg.Pool,
    budget: RateBudget,
    source: ConnectionSource,
    settings: ReconcilerSettings,
    now: datetime,
    started_at: datetime,
    publisher: ReplayPublisher | None = None,
) -> list[str]:
    """Reconciles every enabled connection that is due; returns their names."""
    async with pool.acquire() as db:
        last = await last_runs(db)
    due = [
        c
        for c in await source.list()
        if c.enabled and is_due(settings.schedule_of(c.name), last.get(c.name, started_at), now)
    ]
    for connection in due:
        await reconcile_and_store(pool, budget, connection, publisher)
    return [c.name for c in due]


async def schedule_forever(
    pool: asyncpg.Pool,
    budget: RateBudget,
    source: ConnectionSource,
    settings: ReconcilerSettings,
    publisher: ReplayPublisher | None = None,
) -> None:
    started_at = datetime.now(UTC)
    while True:
        await run_due(pool, budget, source, settings, datetime.now(UTC), started_at, publisher)
        await asyncio.sleep(settings.check_interval_seconds)
