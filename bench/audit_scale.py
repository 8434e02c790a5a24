"""The audit store at scale: status-view and lineage query times with N rows present, the
recorder's insert rate on top of them, and the database's size per million rows.

Fills a fresh database's partitioned log with N rows directly in PostgreSQL
(generate_series: a change and its result per record, every tenth record rejected, 1,000
tenants, spread over the last twelve months of partitions; the hashes are not chained, which
no query here reads) and every record's state from it, then times the reads the console,
the command line and the services make, then appends messages through audit-store's own
recorder on top of them.

    .venv/bin/python -m bench.audit_scale --rows 10000000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel

from audit_store.lifecycle import migrate
from audit_store.partitions import add_months, add_partitions, month_start
from bench.audit_insert import bench_events, recorder_alone
from bench.report import Figure, Record
from bench.sizes import BenchSize, ScenarioContext
from mlconnector.audit.lineage import record_lineage
from mlconnector.audit.status import (
    RecordState,
    StatusFilter,
    record_statuses,
    results_since,
    state_summaries,
)
from mlconnector.contracts import Entity
from mlconnector_cli.stack import fresh_database, local_stack

TENANTS = 1000
MONTHS = 12
CHUNK_RECORDS = 500_000
FIRST_ENTITY_ID = 50_000
QUICK_REPEATS = 5

# One statement per chunk of records: a change and its result each. Chains are per topic
# and Kafka partition (12 each), positions follow the record number.
_FILL = """
INSERT INTO audit_log (topic, kafka_partition, kafka_offset, message_key, headers, body,
    kafka_time, arrived_at, chain_position, row_hash, event_id, event_type, replay_of,
    correlation_id, payload, tenant, entity, entity_id, event_time)
SELECT r.topic, r.chain, r.n / 12, convert_to(r.tenant || ':' || r.entity_id, 'UTF8'),
       jsonb_build_array(jsonb_build_array('event-id', r.event_id),
                         jsonb_build_array('event-type', r.event_type)),
       convert_to(r.payload::text, 'UTF8'), r.at, r.at, r.n / 12 + 1,
       sha256(convert_to(r.event_id, 'UTF8')), r.event_id, r.event_type, NULL, NULL,
       r.payload, r.tenant, 'supplier', r.entity_id, r.at
FROM (
    SELECT g AS n, g % 12 AS chain, x.topic, x.event_type, x.event_id, t.tenant, t.entity_id,
           $3::timestamptz + (g * $4::double precision) * interval '1 second' AS at,
           CASE WHEN x.topic = 'visma.changes' THEN jsonb_build_object(
               'event_id', x.event_id, 'tenant', t.tenant, 'entity', 'supplier',
               'entity_id', t.entity_id, 'supplier_number', t.entity_id,
               'content_hash', md5(t.entity_id), 'name', 'Leverandør ' || g)
           ELSE jsonb_build_object(
               'event_id', x.event_id, 'tenant', t.tenant, 'entity', 'supplier',
               'entity_id', t.entity_id, 'change_event_id', md5('change' || g)::uuid::text,
               'content_hash', md5(t.entity_id), 'supplier_number', t.entity_id,
               'outcome', CASE WHEN g % 10 = 0 THEN 'rejected' ELSE 'delivered' END,
               'reasons', CASE WHEN g % 10 = 0 THEN jsonb_build_array(jsonb_build_object(
                   'category', 'Validation', 'field', 'name', 'message', 'too long'))
                   ELSE '[]'::jsonb END,
               'attempts', 1)
           END AS payload
    FROM generate_series($1::bigint, $2::bigint) AS g
    CROSS JOIN LATERAL (SELECT (g % 1000)::text AS tenant, ($5 + g)::text AS entity_id) AS t
    CROSS JOIN LATERAL (VALUES
        ('visma.changes', 'SupplierChanged', md5('change' || g)::uuid::text),
        ('basware.results', 'DeliveryResult', md5('result' || g)::uuid::text)
    ) AS x(topic, event_type, event_id)
) AS r
"""


class QueryTime(BaseModel):
    name: str
    median_ms: float
    runs: int


class ScaleFigures(BaseModel):
    rows: int
    fill_seconds: float
    database_megabytes: float
    empty_database_megabytes: float
    queries: list[QueryTime]
    insert_messages: int
    insert_seconds: float

    @property
    def megabytes_per_million_rows(self) -> float:
        grown = self.database_megabytes - self.empty_database_megabytes
        return grown / (self.rows / 1e6) if self.rows else 0.0

    @property
    def insert_per_second(self) -> float:
        return self.insert_messages / self.insert_seconds if self.insert_seconds else 0.0


async def database_megabytes(conn: asyncpg.Connection) -> float:
    size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
    return size / 1e6


async def fill(conn: asyncpg.Connection, rows: int, now: datetime) -> None:
    """`rows` rows (a change and a result per record) over the last MONTHS months."""
    first = add_months(month_start(now), -(MONTHS - 1))
    await add_partitions(conn, [add_months(first, i) for i in range(MONTHS)])
    records = rows // 2
    step = (now - first).total_seconds() / max(records, 1)
    for low in range(1, records + 1, CHUNK_RECORDS):
        high = min(low + CHUNK_RECORDS - 1, records)
        await conn.execute(_FILL, low, high, first, step, FIRST_ENTITY_ID)
    await conn.execute("ANALYZE audit_log")
    # The rows went in beside the recorder: their event ids and every record's state from
    # the log, as audit-store migration 007 fills them.
    await conn.execute("INSERT INTO audit_event_id (event_id) SELECT event_id FROM audit_log")
    await conn.execute("SELECT audit_record_state_rebuild()")
    await conn.execute("VACUUM ANALYZE audit_record_state")


async def timed(
    name: str, work: Callable[[], Awaitable[Any]], repeats: int = QUICK_REPEATS
) -> QueryTime:
    seconds: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - started)
    return QueryTime(name=name, median_ms=statistics.median(seconds) * 1000, runs=repeats)


async def time_queries(conn: asyncpg.Connection, rows: int, whole_view: bool) -> list[QueryTime]:
    records = rows // 2
    one = str(FIRST_ENTITY_ID + records // 2)
    many = tuple(str(FIRST_ENTITY_ID + records // 3 + i * 7) for i in range(50))
    tenant = str((records // 2) % TENANTS)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    queries = [
        await timed(
            "status of one record",
            lambda: record_statuses(conn, StatusFilter(entity_id=one)),
        ),
        await timed(
            "status of one record in its tenant",
            lambda: record_statuses(
                conn, StatusFilter(tenant=tenant, entity=Entity.SUPPLIER, entity_id=one)
            ),
        ),
        await timed(
            "status of 50 records",
            lambda: record_statuses(conn, StatusFilter(entity_ids=many)),
        ),
        await timed(
            "lineage of one record",
            lambda: record_lineage(conn, Entity.SUPPLIER, one),
        ),
        await timed("results in the last hour", lambda: results_since(conn, hour_ago)),
    ]
    if whole_view:
        # Every record's state (audit_record_state), counted or filtered by state. Once each.
        queries.append(await timed("state counts (every record)", lambda: state_summaries(conn), 1))
        queries.append(
            await timed(
                "100 latest rejected (every record)",
                lambda: record_statuses(
                    conn, StatusFilter(states=(RecordState.REJECTED,), limit=100)
                ),
                1,
            )
        )
    return queries


async def measure(
    database_url: str, rows: int, insert_messages: int, whole_view: bool
) -> ScaleFigures:
    async with fresh_database(database_url, "bench_audit_scale") as url:
        await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            empty = await database_megabytes(conn)
            started = time.perf_counter()
            await fill(conn, rows, datetime.now(UTC))
            filled = time.perf_counter() - started
            size = await database_megabytes(conn)
            queries = await time_queries(conn, rows, whole_view)
        finally:
            await conn.close()
        inserted = await recorder_alone(url, bench_events(insert_messages), 2000)
    return ScaleFigures(
        rows=rows,
        fill_seconds=filled,
        database_megabytes=size,
        empty_database_megabytes=empty,
        queries=queries,
        insert_messages=insert_messages,
        insert_seconds=inserted,
    )


async def audit_scale(size: BenchSize, context: ScenarioContext, record: Record) -> None:
    """The bench run: a fresh database on the local stack, filled, timed, appended to."""
    async with local_stack(purpose="bench") as stack:
        figures = await measure(
            stack.database_url,
            size.audit_scale_rows,
            size.audit_scale_inserts,
            whole_view=size.audit_scale_whole_view,
        )
    source = f"audit log of {figures.rows:,} rows (generate_series), PostgreSQL"
    found = [
        Figure(name="rows generated", value=figures.fill_seconds, unit="s", source=source),
        Figure(name="database size", value=figures.database_megabytes, unit="MB", source=source),
        Figure(
            name="growth per million rows",
            value=figures.megabytes_per_million_rows,
            unit="MB",
            source=source,
        ),
        Figure(
            name=f"recorder inserts on top ({figures.insert_messages:,} messages)",
            value=figures.insert_per_second,
            unit="rows/s",
            source="audit-store's recorder, batches of 2,000",
        ),
    ]
    found += [
        Figure(name=q.name, value=q.median_ms, unit="ms", source=f"{source}, median of {q.runs}")
        for q in figures.queries
    ]
    record("audit-scale", found)


async def _main(rows: int, inserts: int, whole_view: bool) -> None:
    async with local_stack(purpose="bench") as stack:
        figures = await measure(stack.database_url, rows, inserts, whole_view)
    print(figures.model_dump_json(indent=2))
    print(
        f"{figures.rows:,} rows: {figures.database_megabytes:,.0f} MB "
        f"({figures.megabytes_per_million_rows:,.0f} MB per million rows); recorder on top "
        f"{figures.insert_per_second:,.0f} rows/s"
    )
    for q in figures.queries:
        print(f"{q.name:<40} {q.median_ms:12.1f} ms (median of {q.runs})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--inserts", type=int, default=100_000)
    parser.add_argument("--no-whole-view", action="store_true")
    args = parser.parse_args()
    asyncio.run(_main(args.rows, args.inserts, not args.no_whole_view))
