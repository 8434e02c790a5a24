"""The latest reconcile of each connection, as the reconciler stored it (its tables are the
reconciler's own, services/reconciler/reconciler/migrations): when it ran, whether Visma and
Basware were equal, and each entity's totals. `mlconnector status` and the console's
Overview read it from here; an empty list before the reconciler or the command first ran."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from mlconnector.audit.stored import Connection


class ReconciledEntityTotals(BaseModel):
    entity: str
    visma: int
    basware: int
    equal: int
    missing: int
    extra: int
    different: int
    duplicate: int
    unmappable: int

    @property
    def not_equal(self) -> int:
        return self.missing + self.extra + self.different + self.duplicate + self.unmappable


class LatestReconcile(BaseModel):
    connection: str
    tenant: str
    finished_at: datetime
    all_equal: bool
    # Why the run could not compare; its totals are then empty.
    error: str | None
    entities: list[ReconciledEntityTotals]


async def latest_reconciles(conn: Connection) -> list[LatestReconcile]:
    if await conn.fetchval("SELECT to_regclass('reconcile_run') IS NULL"):
        return []
    runs = await conn.fetch(
        "SELECT DISTINCT ON (connection) run_id, connection, tenant, finished_at, all_equal,"
        " error FROM reconcile_run ORDER BY connection, finished_at DESC, run_id DESC"
    )
    totals = await conn.fetch(
        "SELECT run_id, entity, visma, basware, equal, missing, extra, different, duplicate,"
        " unmappable FROM reconcile_totals WHERE run_id = ANY($1::bigint[]) ORDER BY entity",
        [r["run_id"] for r in runs],
    )
    by_run: dict[int, list[ReconciledEntityTotals]] = {}
    for row in totals:
        values = {k: v for k, v in dict(row).items() if k != "run_id"}
        by_run.setdefault(row["run_id"], []).append(ReconciledEntityTotals.model_validate(values))
    return [
        LatestReconcile(
            connection=r["connection"],
            tenant=r["tenant"],
            finished_at=r["finished_at"],
            all_equal=r["all_equal"],
            error=r["error"],
            entities=by_run.get(r["run_id"], []),
        )
        for r in runs
    ]
