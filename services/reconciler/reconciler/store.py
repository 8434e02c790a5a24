"""Each run's totals and differences in PostgreSQL (migrations/), and when each connection
last ran (what the schedule counts from). `mlconnector.reconcile_status` reads them back."""

from __future__ import annotations

import json
from datetime import datetime

from mlconnector.audit.stored import Connection as Database
from reconciler.reading import ConnectionReport


async def save_report(db: Database, report: ConnectionReport) -> int:
    """Stores one run; returns its id."""
    async with db.transaction():
        run_id: int = await db.fetchval(
            "INSERT INTO reconcile_run (connection, tenant, started_at, finished_at,"
            " visma_calls, basware_calls, all_equal) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " RETURNING run_id",
            report.connection,
            report.tenant,
            report.started_at,
            report.finished_at,
            report.calls.visma,
            report.calls.basware,
            report.all_equal,
        )
        await db.executemany(
            "INSERT INTO reconcile_totals (run_id, entity, visma, basware, equal, missing,"
            " extra, different, duplicate, unmappable, statuses)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)",
            [
                (
                    run_id,
                    t.entity,
                    t.visma,
                    t.basware,
                    t.equal,
                    t.missing,
                    t.extra,
                    t.different,
                    t.duplicate,
                    t.unmappable,
                    json.dumps(t.statuses),
                )
                for t in (e.totals for e in report.entities)
            ],
        )
        await db.executemany(
            "INSERT INTO reconcile_difference (run_id, entity, record_key, outcome, body)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            [
                (run_id, d.entity, d.key, d.outcome.value, d.model_dump_json())
                for e in report.entities
                for d in e.differences
            ],
        )
    return run_id


async def save_failure(
    db: Database, connection: str, tenant: str, started_at: datetime, error: str
) -> None:
    """A run that could not compare (an API down, credentials refused): when and why."""
    await db.execute(
        "INSERT INTO reconcile_run (connection, tenant, started_at, finished_at, all_equal,"
        " error) VALUES ($1, $2, $3, now(), false, $4)",
        connection,
        tenant,
        started_at,
        error,
    )


async def last_runs(db: Database) -> dict[str, datetime]:
    """When each connection's latest run started."""
    rows = await db.fetch(
        "SELECT connection, max(started_at) AS started_at FROM reconcile_run GROUP BY connection"
    )
    return {r["connection"]: r["started_at"] for r in rows}
