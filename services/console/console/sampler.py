"""Samples where the sync stands, so the Overview answers from a row instead of a scan.

A sample is `mlconnector status`'s picture (`mlconnector.sync_status`) plus the failed and
rejected records per Basware category. Counting them means reading the whole status view,
which takes seconds over millions of log rows: the sampler waits ten times as long as a
sample took before the next (and at least `sample_seconds`), and the Overview page reads
the latest sample and the per-minute rows behind its charts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import asyncpg
from pydantic import BaseModel

from mlconnector.audit.stored import Connection
from mlconnector.home import StackEndpoint
from mlconnector.sync_status import StatusReport, sync_status

log = logging.getLogger(__name__)

KEEP = timedelta(hours=24)
# A sample that took this long makes the sampler wait this many times as long.
BACKOFF_FACTOR = 10


class CategoryCount(BaseModel):
    category: str
    records: int


class SyncSample(BaseModel):
    report: StatusReport
    failures: list[CategoryCount]

    @property
    def taken_at(self) -> datetime:
        return self.report.now


async def failure_categories(conn: Connection) -> list[CategoryCount]:
    """Failed and rejected records per the category of their first Basware reason."""
    if await conn.fetchval("SELECT to_regclass('audit_record_state') IS NULL"):
        return []
    rows = await conn.fetch(
        """
        SELECT coalesce(reasons -> 0 ->> 'category', 'uncategorised') AS category,
               count(*) AS records
        FROM audit_record_state
        WHERE state IN ('failed', 'rejected')
        GROUP BY 1 ORDER BY 2 DESC, 1
        """
    )
    return [CategoryCount.model_validate(dict(r)) for r in rows]


async def take_sample(pool: asyncpg.Pool, services: Sequence[StackEndpoint]) -> SyncSample:
    async with pool.acquire() as conn:
        report = await sync_status(conn, services)
        failures = await failure_categories(conn)
    return SyncSample(report=report, failures=failures)


async def store_sample(pool: asyncpg.Pool, sample: SyncSample) -> None:
    taken = sample.taken_at
    minute = taken.replace(second=0, microsecond=0)
    delivered: dict[str, int] = {}
    oldest: dict[str, float] = {}
    for row in sample.report.entities:
        delivered[row.entity] = delivered.get(row.entity, 0) + row.progress.delivered
        if row.oldest_pending_at is not None:
            age = (taken - row.oldest_pending_at).total_seconds()
            oldest[row.entity] = max(oldest.get(row.entity, 0.0), age)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO console_samples (taken_at, sample) VALUES ($1, $2)"
            " ON CONFLICT (taken_at) DO NOTHING",
            taken,
            sample.model_dump_json(),
        )
        await conn.executemany(
            "INSERT INTO console_minutes (minute, entity, delivered, oldest_pending_seconds)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (minute, entity) DO UPDATE SET"
            " delivered = EXCLUDED.delivered,"
            " oldest_pending_seconds = EXCLUDED.oldest_pending_seconds",
            [(minute, entity, count, oldest.get(entity)) for entity, count in delivered.items()],
        )
        await conn.executemany(
            "INSERT INTO console_failure_minutes (minute, category, records) VALUES ($1, $2, $3)"
            " ON CONFLICT (minute, category) DO UPDATE SET records = EXCLUDED.records",
            [(minute, f.category, f.records) for f in sample.failures],
        )
        # The latest sample is all the Overview reads whole; the minutes make the charts.
        await conn.execute("DELETE FROM console_samples WHERE taken_at < $1", taken)
        await conn.execute("DELETE FROM console_minutes WHERE minute < $1", taken - KEEP)
        await conn.execute("DELETE FROM console_failure_minutes WHERE minute < $1", taken - KEEP)


async def latest_sample(pool: asyncpg.Pool) -> SyncSample | None:
    raw = await pool.fetchval("SELECT sample FROM console_samples ORDER BY taken_at DESC LIMIT 1")
    return SyncSample.model_validate_json(raw) if raw is not None else None


class Sampler:
    """Takes a sample, stores it, waits; runs until cancelled."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        services: Callable[[], Sequence[StackEndpoint]],
        least_seconds: float,
    ) -> None:
        self._pool = pool
        self._services = services
        self._least = least_seconds
        self.samples = 0

    async def sample_once(self) -> float:
        """Takes and stores one sample; returns how long it took."""
        started = time.monotonic()
        await store_sample(self._pool, await take_sample(self._pool, self._services()))
        self.samples += 1
        return time.monotonic() - started

    async def run(self) -> None:
        while True:
            try:
                took = await self.sample_once()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("the sync could not be sampled: %s", error)
                took = self._least
            await asyncio.sleep(max(self._least, BACKOFF_FACTOR * took))
